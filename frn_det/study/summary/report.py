"""The batch-size study's summary (benchmarks/study/): Table 6's shape on each look, with and without
the recipe options, each option's effect, the learning-rate sweep, Table 6's claims checked, and
Table 3 in detection with FRN's gap to GN split into its steps.

  python tools/study_summary.py                          # reads and writes benchmarks/study
  python tools/study_summary.py --study output/study --output /tmp/summary

The study folder holds one folder per variant, as benchmarks/study/commands.sh writes them: `shapes`
(the paper's method and the baselines on the photo-like look), `real` (the real-photo look),
`<look>_<option>` (the same runs with a recipe option on). Each run folder (`frn_2img_seed1`,
`gn_8img_seed0_lr0.05`) holds the results.json and config.yaml that tools/train_net.py wrote. Where a
cell was run at several learning rates, it shows the best (by mean AP over seeds) and names it; an 8-image
run stopped by a non-finite loss (diverged.txt in place of results.json) shows in the learning-rate table.
Runs at another input size than the config's (`..._256px`, tools/batch_study.py --sizes) get tables of their
own, and a table and sizes.png show each row's gap to GN by size; summary.png shows the main size (the
largest with a complete table). Writes summary.md and summary.png; with --readme FILE, also puts the tables
between the lines `<!-- study summary -->` and `<!-- /study summary -->` of FILE, and with --headline the one-table summary (FRN, GN and BN per look and size)
between `<!-- study table -->` and `<!-- /study table -->` of README.md (or of --headline FILE), and with
--claims Table 6's claims at every size between `<!-- study claims -->` and `<!-- /study claims -->` of
benchmarks/study/README.md (or of --claims FILE).
Default paths are relative to the current directory (the repository's root).
"""
import argparse
import os

from frn_det.study.summary.plots import plot, plot_schedule, plot_sizes
from frn_det.study.summary.runs import convergence_runs, load_runs, study_budget
from frn_det.study.summary.tables import all_claims, headline_table, markdown
from frn_det.utils import write_atomic

STUDY = os.path.join("benchmarks", "study")
# a schedule curve's runs (iters<N>/<run>), read beside the study's
CONVERGENCE = os.path.join("benchmarks", "convergence")
README_BEGIN, README_END = "<!-- study summary -->", "<!-- /study summary -->"
HEADLINE_README = "README.md"
HEADLINE_BEGIN, HEADLINE_END = "<!-- study table -->", "<!-- /study table -->"
CLAIMS_README = os.path.join(STUDY, "README.md")
CLAIMS_BEGIN, CLAIMS_END = "<!-- study claims -->", "<!-- /study claims -->"


def _write_text(path, text):
    write_atomic(path, lambda f: f.write(text), "w", fsync=False)


def update_readme(path, text, markers=(README_BEGIN, README_END)):
    """Replaces what lies between the README's markers with text."""
    with open(path) as f:
        readme = f.read()
    begin, end_marker = markers
    start, end = readme.find(begin), readme.find(end_marker)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no '{begin}' ... '{end_marker}' lines to put the summary between")
    _write_text(path, readme[: start + len(begin)] + "\n" + text.rstrip() + "\n" + readme[end:])


def write_summary(runs, output, curve_runs, readme=None, headline=None, diverged=(), claims=None):
    """summary.md and the plots in output (and the tables between readme's markers, the one-table summary
    between headline's, Table 6's claims at every size between claims'); returns the text. diverged:
    the runs stopped by a non-finite loss, for the learning-rate sweep."""
    os.makedirs(output, exist_ok=True)
    text = markdown(runs, curve_runs, diverged)
    _write_text(os.path.join(output, "summary.md"), text)
    plot(study_budget(runs), os.path.join(output, "summary.png"))
    plot_sizes(study_budget(runs), os.path.join(output, "sizes.png"))
    plot_schedule(curve_runs, os.path.join(output, "schedule.png"))
    if readme:
        update_readme(readme, text)
    if headline:
        update_readme(headline, "\n".join(headline_table(runs)), (HEADLINE_BEGIN, HEADLINE_END))
    if claims:
        update_readme(claims, "\n".join(all_claims(runs)), (CLAIMS_BEGIN, CLAIMS_END))
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default=STUDY)
    ap.add_argument("--output", default=None, help="default: the study folder")
    ap.add_argument("--convergence", default=CONVERGENCE,
                    help="a schedule curve's runs (iters<N>/<run>) for the schedule table; '' for none")
    ap.add_argument("--readme", default=None, metavar="FILE",
                    help="a markdown file to put the tables in, between markers")
    ap.add_argument("--headline", nargs="?", const=HEADLINE_README, default=None, metavar="FILE",
                    help="a markdown file to put the one-table summary in, between markers (without FILE: README.md)")
    ap.add_argument("--claims", nargs="?", const=CLAIMS_README, default=None, metavar="FILE",
                    help="a markdown file to put Table 6's claims at every size in, between markers (without "
                         "FILE: the study's README)")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.study):
        raise SystemExit(f"no study folder {args.study!r}: give --study, or run from the folder that holds "
                         f"{STUDY} (the repository's root)")
    runs = load_runs(args.study)
    if not runs:
        raise SystemExit(f"no finished runs under {args.study} (<variant>/<method>_<m>img_seed<s>/results.json)")
    curve = runs + convergence_runs(args.convergence, runs)
    diverged = load_runs(args.study, diverged=True)
    print(write_summary(runs, args.output or args.study, curve, args.readme, args.headline, diverged, args.claims))
    return runs
