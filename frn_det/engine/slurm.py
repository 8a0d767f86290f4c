"""Training as a SLURM job through submitit, the way detectron2's authors' projects launch: one task per
machine, each running `python -m frn_det.train_net` with detectron2's `launch` inside it (num_machines =
the job's tasks, machine_rank = the task's rank, the first node's address as dist_url). A job that SLURM
stops (a time limit, a preemption, `scontrol requeue`) is requeued and the training resumes from its last
checkpoint (--resume; frn_det's checkpoints are written whole), so nothing but the steps since that
checkpoint is lost."""
import json
import os
import signal
import subprocess
import sys
import time

from frn_det.utils import write_json

JOB_RECORD = "slurm_job.json"  # in a run's OUTPUT_DIR: its job id and submitit folder
# states in which a job will still run or is running (squeue's long names)
LIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
               "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "PREEMPTED"}


def add_slurm_arguments(parser):
    """The --slurm-* options of the commands that can submit to SLURM."""
    group = parser.add_argument_group("SLURM (with --launcher slurm; through submitit)")
    group.add_argument("--slurm-partition", default=None, help="partition (default: the cluster's default)")
    group.add_argument("--slurm-nodes", type=int, default=1, help="nodes per job (machines of the training)")
    group.add_argument("--slurm-gpus-per-node", type=int, default=None,
                       help="GPUs per node (default: --num-gpus on CUDA, none on the CPU)")
    group.add_argument("--slurm-cpus-per-task", type=int, default=None,
                       help="CPUs per task, one task per node (default: the cluster's)")
    group.add_argument("--slurm-mem-gb", type=float, default=None, help="memory per node in GB (default: the cluster's)")
    group.add_argument("--slurm-timeout-min", type=int, default=60 * 24,
                       help="time limit of one job in minutes; a job reaching it is requeued and resumes "
                            "(default: %(default)s)")
    group.add_argument("--slurm-tasks-per-node", type=int, default=1,
                       help="tasks (detectron2 machines) per node: 1 on a real cluster; more to try a "
                            "several-machine training on one node")
    group.add_argument("--slurm-folder", default=None,
                       help="submitit's folder for job scripts and logs (default: OUTPUT_DIR/slurm, or the "
                            "study's output/slurm)")
    group.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option, as KEY=VALUE without the dashes (e.g. account=lab, "
                            "qos=high, constraint=volta32gb); repeat for several")
    return group


def sbatch_options(items):
    """["account=lab", "exclusive"] -> {"account": "lab", "exclusive": True}, for submitit."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not key:
            raise SystemExit(f"--slurm-option takes KEY=VALUE (an sbatch option without its dashes); got {item!r}")
        out[key.replace("_", "-")] = value if sep else True
    return out


def slurm_executor(folder, args, num_gpus, name, device="cpu"):
    """A submitit executor for SLURM with the --slurm-* options in args."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    gpus = args.slurm_gpus_per_node
    if gpus is None:
        gpus = num_gpus if str(device).startswith("cuda") else 0
    params = dict(name=name, nodes=args.slurm_nodes, tasks_per_node=args.slurm_tasks_per_node,
                  timeout_min=args.slurm_timeout_min, slurm_signal_delay_s=120)
    optional = dict(gpus_per_node=gpus or None, cpus_per_task=args.slurm_cpus_per_task,
                    mem_gb=args.slurm_mem_gb, slurm_partition=args.slurm_partition)
    params.update({k: v for k, v in optional.items() if v is not None})
    extra = sbatch_options(args.slurm_option)
    if extra:
        params["slurm_additional_parameters"] = extra
    executor.update_parameters(**params)
    return executor


def _keep_running_on_stop_signals():
    # In the training: submitit's task above it handles the preemption signal (checkpoint, requeue) and
    # SLURM's SIGTERM; the training must not die of them first and be taken for a finished job.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")), signal.SIG_IGN)


class TrainingCommand:
    """A submitit job: `python -m frn_det.train_net ARGV --resume`, once per task, as machine
    `task rank` of `tasks` machines. Checkpointable: when SLURM stops the job it is submitted again as it
    is, and --resume continues from the last checkpoint (an --eval-only job runs without it: it
    evaluates MODEL.WEIGHTS, not OUTPUT_DIR's last checkpoint). Returns the training's exit code."""

    def __init__(self, argv, log=None, processes=1):
        self.argv, self.log, self.processes = list(argv), log, processes

    def environment(self, environ):
        """The training's environment: the task's CPUs shared out among its processes (OMP_NUM_THREADS,
        unless given), as OpenMP would otherwise run a thread per core of the node in every process."""
        cpus = environ.get("SLURM_CPUS_PER_TASK")
        if "OMP_NUM_THREADS" in environ or not cpus or not cpus.isdigit():
            return dict(environ)
        return {**environ, "OMP_NUM_THREADS": str(max(1, int(cpus) // max(1, self.processes)))}

    def command(self, env):
        """The training's command line in task env (submitit's JobEnvironment). The options go first:
        the config overrides at the end of argv take the rest of the line."""
        if env.num_tasks > 1:
            port = 20000 + int(str(env.job_id).split("_")[0]) % 20000
            launch = ["--num-machines", str(env.num_tasks), "--machine-rank", str(env.global_rank),
                      "--dist-url", f"tcp://{env.hostnames[0]}:{port}"]
        else:
            launch = ["--dist-url", "auto"]
        resume = [] if "--eval-only" in self.argv else ["--resume"]
        return [sys.executable, "-m", "frn_det.train_net", *resume, *launch, *self.argv]

    def __call__(self):
        import submitit

        env = submitit.JobEnvironment()
        cmd = self.command(env)
        head = (f"[slurm] job {env.job_id}, task {env.global_rank} of {env.num_tasks} on {env.hostname}, restart "
                f"{os.environ.get('SLURM_RESTART_COUNT', '0')}: {' '.join(cmd)}")
        print(head, flush=True)  # submitit's log of the task
        environ = self.environment(os.environ)
        if self.log is None:
            return subprocess.call(cmd, env=environ, preexec_fn=_keep_running_on_stop_signals)
        log = self.log if env.global_rank == 0 else f"{self.log}.rank{env.global_rank}"
        with open(log, "a") as f:
            f.write(head + "\n")
            f.flush()
            return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=environ,
                                   preexec_fn=_keep_running_on_stop_signals)

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def submit(executor, command):
    """executor.submit(command), with sbatch's refusal as one error (e.g. GPUs asked of a cluster without)."""
    import submitit

    try:
        return executor.submit(command)
    except submitit.core.utils.FailedJobError as e:
        raise SystemExit(f"sbatch refused the job: {str(e).strip()} (the --slurm-* options and the config's "
                         "device decide what is asked; --slurm-gpus-per-node 0 asks for no GPUs)") from None


def record_job(out, job, **extra):
    """Writes OUTPUT_DIR/slurm_job.json: the job's id and submitit folder (and `extra`, e.g. where the job's
    output starts in the run's log)."""
    write_json(os.path.join(out, JOB_RECORD), {"job_id": str(job.job_id), "folder": str(job.paths.folder), **extra})


def job_record(out):
    """OUTPUT_DIR/slurm_job.json as a dict, or None where there is none (or it is not a job's record)."""
    try:
        with open(os.path.join(out, JOB_RECORD)) as f:
            record = json.load(f)
        return record if isinstance(record, dict) and {"job_id", "folder"} <= record.keys() else None
    except (OSError, ValueError):
        return None


def job_state(job_id):
    """SLURM's state of a job by squeue (which works without accounting): its state, "" when SLURM knows
    no such job (long over), None when squeue did not answer (the controller busy: ask again later)."""
    try:
        proc = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return "" if "Invalid job id" in proc.stderr else None
    states = proc.stdout.split()
    return states[0] if states else ""


def find_job(out):
    """The job recorded in OUTPUT_DIR out unless SLURM says it is over (submitit's SlurmJob), else None:
    the run needs a new job."""
    record = job_record(out)
    if record is None:
        return None
    job_id, folder = record["job_id"], record["folder"]
    state = job_state(job_id)
    if state is not None and state not in LIVE_STATES:
        return None
    import submitit

    return submitit.SlurmJob(folder, job_id)


class JobWatch:
    """Follows a submitted job to its end without flooding the controller: squeue at most every `period`
    seconds, and a job SLURM calls over counts as ended only `grace` seconds later without its result
    file (a shared filesystem may show the file late)."""

    def __init__(self, job, period=15.0, grace=60.0):
        self.job, self.period, self.grace = job, period, grace
        self._asked = self._over_since = None

    def poll(self):
        """None while the job is queued or runs, else the training's exit code (job_exit_code)."""
        if self.job.paths.result_pickle.exists():
            return job_exit_code(self.job)
        now = time.time()
        if self._asked is None or now - self._asked >= self.period:
            self._asked = now
            state = job_state(self.job.job_id)
            if state is None or state in LIVE_STATES:
                self._over_since = None
            elif self._over_since is None:
                self._over_since = now
        if self._over_since is not None and now - self._over_since >= self.grace:
            return job_exit_code(self.job)
        return None


def job_exit_code(job):
    """The training's exit code of a finished job; 1 when the job ended without one (failed, cancelled,
    killed), with the reason on stderr."""
    if not job.paths.result_pickle.exists():
        print(f"SLURM job {job.job_id} ended without a result; its log: {job.paths.stderr}", file=sys.stderr)
        return 1
    try:
        return int(job.result() or 0)
    except Exception as e:  # noqa: BLE001  (the job's own error, as submitit reports it)
        first = str(e).strip().splitlines()
        print(f"SLURM job {job.job_id} failed: {first[0] if first else type(e).__name__}; its log: {job.paths.stderr}",
              file=sys.stderr)
        return 1
