"""The study and the training tool on a real SLURM through submitit (skipped where none answers; bring
one up with tools/slurm/one_node.sh up): a study's runs as jobs, followed rather than resubmitted when the
study is restarted, a failed job resubmitted; a training requeued twice (scontrol requeue, and the
preemption signal submitit checkpoints on) that resumes and finishes as an uninterrupted one; and a
training of two machines, two tasks on the one node, over gloo."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from coco_tree import ROOT, TINY, TINY_MODEL, make_coco_tree
from slurm_up import DOWN

pytestmark = pytest.mark.skipif(DOWN is not None, reason=str(DOWN))
submitit = pytest.importorskip("submitit")
TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")
CONFIG = os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")
SLURM = ["--launcher", "slurm", "--slurm-timeout-min", "30", "--slurm-cpus-per-task", "1"]
CPU = ["MODEL.DEVICE", "cpu"]  # the config's cuda would ask SLURM for GPUs


def _wait(condition, what, timeout=600):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def _job(out):
    from frn_det.engine.slurm import JOB_RECORD

    record = json.loads((out / JOB_RECORD).read_text())
    return submitit.SlurmJob(record["folder"], record["job_id"])


def _finished(out):
    return (out / "slurm_job.json").exists() and _job(out).paths.result_pickle.exists()


def _study_argv(cfg, out):
    return ["--config", str(cfg), "--methods", "frn", "bn", "--imgs", "2", "--extra-seeds", "--output", str(out),
            *SLURM, *TINY_MODEL]


def _tiny_config(tmp_path, iters):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f'_BASE_: "{CONFIG}"\nSOLVER:\n  IMS_PER_BATCH: 2\n  MAX_ITER: {iters}\n  WARMUP_ITERS: 2\n'
                   f"  CHECKPOINT_PERIOD: 2\n")
    return cfg


def test_a_study_runs_as_slurm_jobs_followed_when_restarted_and_a_failed_job_resubmitted(tmp_path, monkeypatch):
    from frn_det.study import batch

    cfg, out = _tiny_config(tmp_path, 4), tmp_path / "study"
    # frn's data is missing in the first round: its job fails, the study names its log and bn goes on
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "no_data"))
    argv = _study_argv(cfg, out)
    records = batch.main(argv[:4] + argv[5:])  # --methods frn only
    (failed,) = records
    assert "exit code 1" in failed["result"]["failed"] and "study.log" in failed["result"]["failed"]
    first_job = _job(out / failed["dir"]).job_id

    monkeypatch.setenv("DETECTRON2_DATASETS", str(make_coco_tree(tmp_path / "datasets")))
    study = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "batch_study.py"), *argv],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = [out / "frn_2img_seed0", out / "bn_2img_seed0"]
    # both submitted (frn again: its job had failed), then the study is stopped while they queue or run
    _wait(lambda: all((r / "slurm_job.json").exists() for r in runs) and _job(runs[0]).job_id != first_job,
          "the jobs to be submitted")
    jobs = [_job(r).job_id for r in runs]
    assert not all(_finished(r) for r in runs)
    study.send_signal(signal.SIGKILL)
    study.wait()
    records = batch.main(argv)  # follows the same jobs to their end
    assert [_job(r).job_id for r in runs] == jobs
    assert all("failed" not in r["result"] and not r["skipped"] for r in records), records
    assert all((r / "results.json").exists() for r in runs)
    again = batch.main(argv)
    assert all(r["skipped"] for r in again) and [_job(r).job_id for r in runs] == jobs


def _last_iteration(out):
    return [json.loads(x) for x in open(out / "metrics.json") if '"total_loss"' in x][-1]["iteration"]


def test_a_training_requeued_and_preempted_resumes_and_finishes(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "DETECTRON2_DATASETS": str(make_coco_tree(tmp_path / "datasets"))}
    opts = [*TINY, "SOLVER.MAX_ITER", "40", "SOLVER.WARMUP_ITERS", "4", "DATASETS.TEST", "()", "OUTPUT_DIR", str(out), *CPU]
    proc = subprocess.run([sys.executable, TRAIN_NET, *SLURM, "--config-file", CONFIG, *opts], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = _job(out)
    assert f"Submitted SLURM job {job.job_id}" in proc.stdout

    def checkpointed_after(iteration):
        last = out / "last_checkpoint"
        return last.exists() and re.fullmatch(r"model_(\d+)\.pth", last.read_text()) and \
            int(last.read_text()[6:13]) > iteration

    # a requeue by SLURM (an admin's scontrol requeue, a node failure): the job restarts from its script
    _wait(lambda: checkpointed_after(0), "a first checkpoint")
    subprocess.run(["scontrol", "requeue", job.job_id], check=True)
    _wait(lambda: "restart 1" in _log(job), "the requeued job to start")
    # the preemption (or time-limit) signal: submitit checkpoints the job function and requeues it
    reached = int((out / "last_checkpoint").read_text()[6:13])
    _wait(lambda: checkpointed_after(reached), "a checkpoint after the requeue")
    subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True)
    _wait(lambda: _finished(out), "the job to finish")
    assert job.result() == 0, _log(job)[-3000:]
    log = _log(job)
    assert "restart 2" in log
    resumed = [int(x) for x in re.findall(r"Starting training from iteration (\d+)", log)]
    assert len(resumed) == 3 and resumed[0] == 0 and 0 < resumed[1] < resumed[2] < 40, resumed
    # as an uninterrupted run: every iteration's lr the schedule's, the last at MAX_ITER - 1
    from test_reliability import scheduled_lr

    assert _last_iteration(out) == 39 and (out / "model_final.pth").exists()
    assert not list(out.glob("*.tmp.*"))  # a save cut short by the requeue leaves nothing behind
    lrs = {}
    for line in open(out / "metrics.json"):
        record = json.loads(line)
        if "lr" in record:
            lrs[record["iteration"]] = record["lr"]
    opts_lr = [*TINY, "SOLVER.MAX_ITER", "40", "SOLVER.WARMUP_ITERS", "4"]
    assert all(lr == pytest.approx(scheduled_lr(opts_lr, it), rel=1e-6) for it, lr in lrs.items())


def _log(job):
    return "\n".join(p.read_text() for p in (job.paths.stdout, job.paths.stderr) if p.exists())


def test_two_machines_train_as_two_tasks_of_one_job(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "DETECTRON2_DATASETS": str(make_coco_tree(tmp_path / "datasets"))}
    # two machines of one process each: 2 images per process, 4 in all
    opts = [*TINY, "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "4", "DATASETS.TEST", "()", "OUTPUT_DIR", str(out), *CPU]
    proc = subprocess.run([sys.executable, TRAIN_NET, *SLURM, "--slurm-tasks-per-node", "2", "--config-file", CONFIG,
                           *opts], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 machine(s) of 1 process(es)" in proc.stdout
    job = _job(out)
    _wait(lambda: _finished(out), "the job to finish")
    both = submitit.SlurmJob(job.paths.folder, job.job_id, tasks=(0, 1))
    _wait(lambda: all(t.paths.result_pickle.exists() for t in both._sub_jobs), "both tasks to end", 120)
    assert both.results() == [0, 0], _log(job)[-3000:]
    # detectron2 logs each machine's process: rank 0 to the task's output, rank 1 to OUTPUT_DIR's log.txt.rank1
    assert "Rank of current process: 0. World size: 2" in _log(both._sub_jobs[0])
    assert "Rank of current process: 1. World size: 2" in (out / "log.txt.rank1").read_text()
    assert "task 1 of 2" in _log(both._sub_jobs[1])
    assert _last_iteration(out) == 3 and (out / "model_final.pth").exists()
