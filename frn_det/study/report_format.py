"""How every report of the study writes its numbers: the metrics it reads from a run's results, and a
cell's values over seeds."""
import statistics

from frn_det.evaluation.results import HEADLINE as METRICS  # noqa: F401  (AP, AP50, AP75)


def mean_sd(values):
    """(mean, standard deviation) over seeds; the deviation is 0 for one seed (a plot's error bar)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def spread(values):
    """Mean ± standard deviation over seeds, the value alone for one seed; "-" for none."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    mean, sd = mean_sd(values)
    return f"{mean:.1f} ± {sd:.1f}"
