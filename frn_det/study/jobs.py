"""Where the study's runs execute: on this machine, N at a time (LocalJobs), or each as a SLURM job
through submitit (SlurmJobs). Both start a run's training (frn_det.train_net's arguments) and report its
exit code; the study's loop (frn_det.study.batch_runs) is the same for either."""
import os
import signal
import subprocess
import sys

from frn_det.engine.slurm import JobWatch, TrainingCommand, find_job, job_record, record_job, slurm_executor, submit


def log_size(log):
    """Bytes in the run's log: where the output of a job started now begins."""
    return os.path.getsize(log) if os.path.exists(log) else 0


class LocalJobs:
    """Up to `jobs` runs at once, each a subprocess; the CPU threads are shared out among them (unless
    OMP_NUM_THREADS is set: each run's own), and on CUDA the visible GPUs, num_gpus each."""

    stop_with_study = True

    def __init__(self, jobs, device="cpu", num_gpus=1):
        if jobs < 1:
            raise SystemExit(f"--jobs takes the number of runs at once, 1 or more; got {jobs}")
        self.jobs = jobs
        self.free = list(range(jobs))
        self.threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // jobs))
        self.gpus = None
        if str(device).startswith("cuda"):
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if visible is not None:
                gpus = [g.strip() for g in visible.split(",") if g.strip()]
            else:
                import torch

                gpus = [str(i) for i in range(torch.cuda.device_count())]
            if len(gpus) < jobs * num_gpus:
                raise SystemExit(f"--jobs {jobs} with --num-gpus {num_gpus} needs {jobs * num_gpus} GPUs; "
                                 f"{len(gpus)} are visible")
            self.gpus = [gpus[i * num_gpus:(i + 1) * num_gpus] for i in range(jobs)]

    def has_room(self):
        return bool(self.free)

    def start(self, train_argv, out, log):
        """Starts the training of the run in OUTPUT_DIR out, its output appended to the file log."""
        slot = self.free.pop(0)
        env = {**os.environ, "OMP_NUM_THREADS": self.threads}
        if self.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus[slot])
        # each run its own free port: detectron2's default is the same for every process of a user
        cmd = [sys.executable, "-m", "frn_det.train_net", "--dist-url", "auto", *train_argv]
        log_start = log_size(log)
        with open(log, "a") as f:
            # a session of its own: cancel stops the run's worker processes too (--num-gpus > 1)
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return _LocalJob(proc, slot, self.free, log_start)

    def describe(self):
        return f"{self.jobs} at a time on this machine, {self.threads} thread(s) each" + (
            "" if self.gpus is None else ", GPUs " + " | ".join(",".join(g) for g in self.gpus))


class _LocalJob:
    def __init__(self, proc, slot, free, log_start):
        self.proc, self.slot, self._free, self.log_start = proc, slot, free, log_start

    def poll(self):
        """None while it runs, else its exit code (its slot given back)."""
        code = self.proc.poll()
        if code is not None and self.slot is not None:
            self._free.append(self.slot)
            self._free.sort()
            self.slot = None
        return code

    def cancel(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:  # already gone
            pass
        self.proc.wait()


class SlurmJobs:
    """Every run a SLURM job through submitit, all queued at once (SLURM decides when each starts). The
    job id goes into the run's folder, so that a rerun of the study follows jobs still queued or running
    instead of submitting them again, and submits a new one for a run whose job failed."""

    stop_with_study = False  # a rerun of the study follows them

    def __init__(self, slurm_args, folder, num_gpus, device):
        self.args, self.folder, self.num_gpus, self.device = slurm_args, folder, num_gpus, device

    def has_room(self):
        return True

    def start(self, train_argv, out, log):
        job = find_job(out)
        if job is not None:  # still queued or running: its output started where its record says
            return _SlurmJob(job, job_record(out).get("log_start", 0))
        log_start = log_size(log)
        executor = slurm_executor(self.folder, self.args, self.num_gpus, os.path.basename(out), self.device)
        job = submit(executor, TrainingCommand(train_argv, os.path.abspath(log), processes=self.num_gpus))
        record_job(out, job, log_start=log_start)
        return _SlurmJob(job, log_start)

    def describe(self):
        return f"SLURM jobs through submitit (job scripts and logs in {self.folder})"


class _SlurmJob:
    def __init__(self, job, log_start):
        self.job, self.watch, self.log_start = job, JobWatch(job), log_start

    def poll(self):
        """None while the job is queued or runs, else the training's exit code."""
        return self.watch.poll()

    def cancel(self):
        self.job.cancel(check=False)
