"""Running the batch study's runs (frn_det.study.batch): each run's training started through a job
launcher (frn_det.study.jobs), followed to its end with a progress bar over all runs, and its result
read back: AP, a failure naming its log, or a divergence kept as a result of its lr."""
import json
import os
import re
import time

from tqdm import tqdm

from frn_det.engine.train_loop import NON_FINITE_LOSS
from frn_det.evaluation import read_results
from frn_det.study.run_name import DIVERGED
from frn_det.utils import write_atomic


def relative(path):
    """A path relative to the current directory when it lies inside it (also through a link, as the
    model zoo's configs/ is in a checkout), so that committed results name no machine; else as given."""
    for candidate in (os.path.realpath(path), os.path.abspath(path)):
        rel = os.path.relpath(candidate)
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            return rel
    return path


def _iterations_done(out):
    """Iterations a run has done, from its last metrics line (while it trains)."""
    try:
        with open(os.path.join(out, "metrics.json")) as f:
            lines = [line for line in f if '"iteration"' in line]
        return json.loads(lines[-1])["iteration"] + 1 if lines else 0
    except (OSError, ValueError, KeyError):
        return 0


def checkpointed_iterations(out):
    """Iterations up to a run's last checkpoint, where --resume starts it again."""
    try:
        name = open(os.path.join(out, "last_checkpoint")).read().strip()  # model_0000799.pth, model_final.pth
    except OSError:
        return 0
    match = re.fullmatch(r"model_(\d+)\.pth", name)
    return int(match.group(1)) + 1 if match else 0


def start_run(out, argv, jobs):
    """Starts the training of the run in folder out (frn_det.train_net's arguments argv) through jobs
    (frn_det.study.jobs); returns (job, the byte of study.log where this attempt's output starts: a
    followed SLURM job's, where it was submitted)."""
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, DIVERGED)):  # an earlier attempt's: this one decides
        os.remove(os.path.join(out, DIVERGED))
    job = jobs.start(argv, out, os.path.join(out, "study.log"))
    return job, job.log_start


def finished_result(out):
    """The result of the run in folder out when it has finished ({dataset: {AP, AP50, AP75}}), else None."""
    results_file = os.path.join(out, "results.json")
    return read_results(results_file)["headline"] if os.path.exists(results_file) else None


def run_result(out, code, attempt_start=0):
    """The result of the run in folder out once its training ended with exit code `code`: {dataset: {AP,
    AP50, AP75}}, or {"failed": why} (and diverged.txt where it stopped on a non-finite loss)."""
    results_file = os.path.join(out, "results.json")
    if code != 0 or not os.path.exists(results_file):
        if os.path.exists(os.path.join(out, "study.log")):
            mark_diverged(out, attempt_start)
        return {"failed": f"exit code {code}; see {relative(os.path.join(out, 'study.log'))}"}
    return read_results(results_file)["headline"]


def run_all(runs, output, argvs, jobs, bar, before, solvers):
    """Runs every run (its folder output/run["dir"], its training's arguments in argvs) not finished yet
    through jobs, as many at once as jobs has room for; the bar counts the training images done
    (solvers: each run's SOLVER keys, before: its iterations done before). Returns [(result, skipped)] in
    the order of runs."""
    outs = [os.path.join(output, run["dir"]) for run in runs]
    outcomes = {}  # index -> (result, skipped)
    done = {}  # index -> images done so far
    pending = []
    for i, run in enumerate(runs):
        finished = finished_result(outs[i])
        if finished is not None:
            outcomes[i] = (finished, True)
        else:
            pending.append(i)
    active = {}  # index -> (job, attempt_start)
    try:
        while pending or active:
            while pending and jobs.has_room():
                i = pending.pop(0)
                active[i] = start_run(outs[i], argvs[i], jobs)
            for i, (job, attempt_start) in list(active.items()):
                n, batch = solvers[i]["MAX_ITER"], solvers[i]["IMS_PER_BATCH"]
                code = job.poll()
                if code is None:
                    done[i] = max(0, min(_iterations_done(outs[i]), n) - before[i]) * batch
                    continue
                del active[i]
                done[i] = (n - before[i]) * batch
                result = run_result(outs[i], code, attempt_start)
                outcomes[i] = (result, False)
                if "failed" in result:
                    tqdm.write(f"{runs[i]['dir']}: FAILED ({result['failed']})")
            bar.set_postfix_str(", ".join(runs[i]["dir"] for i in active) or "")
            bar.update(sum(done.values()) - bar.n)
            if active:
                time.sleep(2)
    except BaseException:
        for job, _ in active.values():  # local runs stop with the study; SLURM jobs go on, a rerun follows them
            if jobs.stop_with_study:
                job.cancel()
        raise
    return [outcomes[i] for i in range(len(runs))]


def mark_diverged(out, attempt_start=0):
    """Writes out/diverged.txt, the error line, when the run's study.log (from byte attempt_start: the
    last attempt's part) says it stopped on a non-finite loss (frn_det.engine.train_loop): a diverged
    run is a result of its lr, kept with its metrics."""
    with open(os.path.join(out, "study.log"), "rb") as f:
        f.seek(attempt_start)
        lines = f.read().decode(errors="replace").splitlines(keepends=True)
    errors = [line for line in lines if line.startswith(f"FloatingPointError: {NON_FINITE_LOSS}")]
    if errors:
        write_atomic(os.path.join(out, DIVERGED), lambda f: f.write(errors[-1]), "w")
