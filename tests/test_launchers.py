"""Where runs execute (frn_det.study.jobs, frn_det.engine.slurm) without a SLURM cluster: the study's
--jobs N on this machine, per-method learning rates, how a SLURM task builds its training command, and
the --slurm-* options. tests/test_slurm_launcher.py runs the same against a real SLURM."""
import json
import os
import types

import pytest

from coco_tree import ROOT, TINY_MODEL, make_coco_tree


def test_per_method_lrs_plan_each_method_at_its_own_lrs():
    from frn_det.study.batch import parse_base_lrs, plan_runs

    lrs = parse_base_lrs(["frn=0.2", "gn=0.1,0.05"], ["frn", "gn", "bn"])
    assert lrs == {"frn": [0.2], "gn": [0.1, 0.05], "bn": [None]}
    runs = plan_runs(["frn", "gn", "bn"], [2], [3, 4], {}, lrs, sizes=[256], own_size=128)
    assert [r["name"] for r in runs] == [
        "frn_2img_seed3_lr0.2_256px", "frn_2img_seed4_lr0.2_256px", "gn_2img_seed3_lr0.1_256px",
        "gn_2img_seed4_lr0.1_256px", "gn_2img_seed3_lr0.05_256px", "gn_2img_seed4_lr0.05_256px",
        "bn_2img_seed3_256px", "bn_2img_seed4_256px"]
    # plain values are every method's lrs; a method given none of its own takes them
    assert parse_base_lrs(["0.02", "0.1"], ["frn"]) == [0.02, 0.1] and parse_base_lrs(None, ["frn"]) == [None]
    assert parse_base_lrs(["0.05", "frn=0.2"], ["frn", "gn"]) == {"frn": [0.2], "gn": [0.05]}
    with pytest.raises(SystemExit, match="'gfrn' is not among --methods"):
        parse_base_lrs(["gfrn=0.1"], ["frn", "gn"])
    with pytest.raises(SystemExit, match="METHOD=LR"):
        parse_base_lrs(["frn=fast"], ["frn"])
    from frn_det.study.batch_report import lrs_text

    assert lrs_text(lrs) == "FRN 0.2; GN 0.1, 0.05" and lrs_text([0.02, 0.1]) == "0.02, 0.1" and lrs_text([None]) == ""


def test_local_jobs_share_out_threads_and_gpus(monkeypatch):
    from frn_det.study.jobs import LocalJobs

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert LocalJobs(1).threads == "8" and LocalJobs(2).threads == "4" and LocalJobs(16).threads == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's setting is each run's own
    assert LocalJobs(2).threads == "3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert LocalJobs(2, "cuda", num_gpus=2).gpus == [["4", "5"], ["6", "7"]]
    assert LocalJobs(4, "cuda", num_gpus=1).gpus == [["4"], ["5"], ["6"], ["7"]]
    with pytest.raises(SystemExit, match="--jobs 3 with --num-gpus 2 needs 6 GPUs; 4 are visible"):
        LocalJobs(3, "cuda", num_gpus=2)
    with pytest.raises(SystemExit, match="--jobs takes"):
        LocalJobs(0)


def test_two_runs_at_once_on_this_machine(tmp_path, monkeypatch):
    from frn_det.study import batch

    monkeypatch.setenv("DETECTRON2_DATASETS", str(make_coco_tree(tmp_path / "datasets")))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f'_BASE_: "{os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")}"\n'
                   "SOLVER:\n  IMS_PER_BATCH: 2\n  MAX_ITER: 6\n  WARMUP_ITERS: 2\n  CHECKPOINT_PERIOD: 3\n")
    out = tmp_path / "study"
    argv = ["--config", str(cfg), "--methods", "frn", "bn", "--imgs", "2", "--extra-seeds", "--base-lrs",
            "frn=0.02", "bn=0.01", "--launcher", "local", "--jobs", "2", "--output", str(out), *TINY_MODEL]
    records = batch.main(argv)
    assert [r["name"] for r in records] == ["frn_2img_seed0_lr0.02", "bn_2img_seed0_lr0.01"]
    assert all("failed" not in r["result"] and not r["skipped"] for r in records)
    frn, bn = (out / r["dir"] for r in records)
    # side by side: the second run started (its config.yaml) before the first ended (its results.json)
    assert os.path.getmtime(bn / "config.yaml") < os.path.getmtime(frn / "results.json")
    assert os.path.getmtime(frn / "config.yaml") < os.path.getmtime(bn / "results.json")
    # each at its own lr, its threads the machine's cores shared out
    for run, lr in ((frn, 0.02), (bn, 0.01)):
        assert [json.loads(x) for x in open(run / "metrics.json") if '"total_loss"' in x][-1]["iteration"] == 5
        assert f"BASE_LR: {lr}" in (run / "config.yaml").read_text()
    table = (out / "table.md").read_text()
    assert "best of reference lrs FRN 0.02; BN 0.01" in table
    assert all(r["skipped"] for r in batch.main(argv))


def _env(num_tasks, rank, job_id="4242"):
    return types.SimpleNamespace(num_tasks=num_tasks, global_rank=rank, hostnames=["node-a", "node-b"], job_id=job_id)


def test_a_slurm_task_is_one_machine_of_the_training():
    from frn_det.engine.slurm import TrainingCommand

    argv = ["--config-file", "retinanet_frn_2img.yaml", "--num-gpus", "8", "SOLVER.IMS_PER_BATCH", "16", "OUTPUT_DIR", "out"]
    cmd = TrainingCommand(argv).command(_env(2, 1))
    assert cmd[1:3] == ["-m", "frn_det.train_net"]
    # the launcher's options before the config overrides, which take the rest of the line
    assert cmd[3:] == ["--resume", "--num-machines", "2", "--machine-rank", "1", "--dist-url", "tcp://node-a:24242", *argv]
    assert TrainingCommand(argv).command(_env(1, 0))[3:] == ["--resume", "--dist-url", "auto", *argv]
    from frn_det.train_net import parse_args

    args = parse_args(cmd[3:])
    assert (args.num_machines, args.machine_rank, args.resume, args.num_gpus) == (2, 1, True, 8)
    assert args.opts == ["SOLVER.IMS_PER_BATCH", "16", "OUTPUT_DIR", "out"]
    # an evaluation loads MODEL.WEIGHTS: --resume would load OUTPUT_DIR's last checkpoint instead
    evaluation = TrainingCommand(["--eval-only", *argv]).command(_env(1, 0))
    assert not parse_args(evaluation[3:]).resume and parse_args(evaluation[3:]).eval_only


def test_train_net_submits_the_same_training_without_the_launchers_options():
    from frn_det.train_net import parse_args, training_argv

    args = parse_args(["--launcher", "slurm", "--slurm-nodes", "2", "--slurm-option", "account=lab", "--frn", "GN_TLU",
                       "--config-file", "COCO-Detection/retinanet_R_50_FPN_1x.yaml", "--num-gpus", "8",
                       "--keep-weights", "SOLVER.MAX_ITER", "10"])
    argv = training_argv(args)
    assert argv[:4] == ["--config-file", args.config_file, "--num-gpus", "8"]
    assert argv[4:] == ["--keep-weights", "--frn", "GN_TLU", "SOLVER.MAX_ITER", "10"]
    again = parse_args(argv)
    assert (again.launcher, again.frn, again.keep_weights, again.opts) == ("local", "GN_TLU", True, ["SOLVER.MAX_ITER", "10"])


def test_sbatch_options_and_job_records(tmp_path, monkeypatch):
    from frn_det.engine import slurm

    assert slurm.sbatch_options(["account=lab", "--qos=high", "exclusive", "mail_type=END"]) == {
        "account": "lab", "qos": "high", "exclusive": True, "mail-type": "END"}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        slurm.sbatch_options(["=x"])
    # a recorded job SLURM no longer runs (or no record) means the run needs a new job
    assert slurm.find_job(str(tmp_path)) is None
    (tmp_path / slurm.JOB_RECORD).write_text(json.dumps({"job_id": "77", "folder": str(tmp_path)}))
    monkeypatch.setattr(slurm, "job_state", lambda job_id: {"77": "FAILED"}.get(job_id))
    assert slurm.find_job(str(tmp_path)) is None
    monkeypatch.setattr(slurm, "job_state", lambda job_id: "PENDING")
    pytest.importorskip("submitit")
    assert slurm.find_job(str(tmp_path)).job_id == "77"


def _fake_squeue(tmp_path, monkeypatch, script):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "squeue").write_text("#!/bin/sh\n" + script)
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


@pytest.mark.parametrize("script, state", [
    ('echo RUNNING\n', "RUNNING"),
    ('echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1\n', ""),  # long over
    ('exit 0\n', ""),
    ('echo "slurm_load_jobs error: Socket timed out on send/recv operation" >&2; exit 1\n', None),  # ask again
])
def test_squeue_answers_read_as_states(tmp_path, monkeypatch, script, state):
    from frn_det.engine.slurm import job_state

    _fake_squeue(tmp_path, monkeypatch, script)
    assert job_state("12") == state


def test_a_job_counts_as_ended_only_after_its_grace(tmp_path, monkeypatch):
    from frn_det.engine import slurm

    paths = types.SimpleNamespace(result_pickle=tmp_path / "12_0_result.pkl", stderr=tmp_path / "12_0_log.err")
    job = types.SimpleNamespace(job_id="12", paths=paths, result=lambda: 0)
    states = iter([None, "RUNNING", "COMPLETED", "COMPLETED"])
    monkeypatch.setattr(slurm, "job_state", lambda job_id: next(states))
    clock = [0.0]
    monkeypatch.setattr(slurm.time, "time", lambda: clock[0])
    watch = slurm.JobWatch(job, period=10, grace=30)
    # squeue not answering or RUNNING: the job goes on; asked again only after `period`
    for t in (0, 5, 10):
        clock[0] = t
        assert watch.poll() is None
    clock[0] = 20  # SLURM says it is over: no result file yet, wait out the grace
    assert watch.poll() is None
    clock[0] = 45
    assert watch.poll() is None
    clock[0] = 50
    assert watch.poll() == 1  # over without a result: failed
    paths.result_pickle.write_bytes(b"")
    assert slurm.JobWatch(job).poll() == 0  # a result file decides at once


def test_a_slurm_task_shares_its_cpus_among_its_processes():
    from frn_det.engine.slurm import TrainingCommand

    # OpenMP would run a thread per core of the node in every process of every job sharing it
    assert TrainingCommand([], processes=2).environment({"SLURM_CPUS_PER_TASK": "16"})["OMP_NUM_THREADS"] == "8"
    assert TrainingCommand([]).environment({"SLURM_CPUS_PER_TASK": "1"})["OMP_NUM_THREADS"] == "1"
    assert TrainingCommand([], processes=4).environment({"SLURM_CPUS_PER_TASK": "2"})["OMP_NUM_THREADS"] == "1"
    given = {"SLURM_CPUS_PER_TASK": "16", "OMP_NUM_THREADS": "3"}
    assert TrainingCommand([]).environment(given) == given  # the user's own setting
    assert "OMP_NUM_THREADS" not in TrainingCommand([]).environment({"PATH": "/bin"})  # no CPUs asked: as it is


def test_a_followed_slurm_job_is_judged_on_its_whole_output(tmp_path, monkeypatch):
    # a study restarted while a job runs follows it: a non-finite loss it logged before the restart
    # still marks the run diverged (a result of its lr), not failed
    pytest.importorskip("submitit")
    from frn_det.engine import slurm
    from frn_det.engine.train_loop import NON_FINITE_LOSS
    from frn_det.study import batch_runs
    from frn_det.study.jobs import SlurmJobs

    out = tmp_path / "study" / "frn_2img_seed0"
    out.mkdir(parents=True)
    earlier = "an earlier attempt's output\n"
    (out / "study.log").write_text(earlier + f"FloatingPointError: {NON_FINITE_LOSS} at iteration 3\n")
    slurm.record_job(str(out), types.SimpleNamespace(job_id="77", paths=types.SimpleNamespace(folder=tmp_path)),
                     log_start=len(earlier))
    monkeypatch.setattr(slurm, "job_state", lambda job_id: "RUNNING")
    job, attempt_start = batch_runs.start_run(str(out), [], SlurmJobs(None, str(tmp_path), 1, "cpu"))
    assert job.job.job_id == "77" and attempt_start == len(earlier)
    assert "failed" in batch_runs.run_result(str(out), 1, attempt_start)
    assert (out / "diverged.txt").read_text().startswith("FloatingPointError")
