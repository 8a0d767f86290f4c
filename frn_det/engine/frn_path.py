"""MODEL.FRN.IMPL: the FRN path a run uses (frn_det.layers.dispatch), chosen on the user's device.

`auto` (the default) chooses at the start of training, as cuDNN's benchmark mode does: each candidate
path is checked once per device and dtype against frn_reference (a path that raises or disagrees is
left out, with one warning), then runs a few of the model's own training iterations after a warm-up
of its own (torch.compile, Triton's JIT: not timed); the lowest median iteration time takes the rest
of the run. The timed iterations are ordinary training iterations, so the choice adds no iterations:
it costs only the slower paths' extra time over a few dozen of them. All processes of a DDP run take
rank 0's choice; under torch.use_deterministic_algorithms(True) the run takes the static default. The
checks, timings and choice go to the log and to OUTPUT_DIR/frn_path.json, which evaluation, prediction
and export of that run read (`use_configured_path`); without it they take the static default.

On the CPU the candidate is cpp alone where it is built: it runs an FRN+TLU layer 4x to 12x faster
than python at every RetinaNet shape (benchmarks/frn_layer.md), so timing python would cost and decide
nothing.
FRN_DET_IMPL still overrides everything.
"""
import json
import logging
import os
import statistics
import time

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from frn_det.layers import dispatch, frn_add_tlu_reference, frn_reference
from frn_det.layers.testing import (BLOCK_END_ARGS, assert_agree, assert_tlu_agrees, block_end_case, make_case,
                                    outputs_and_grads, tie_case, tlu_tie_case)

logger = logging.getLogger("frn_det")
CHOICE_FILE = "frn_path.json"
IMPLS = ("auto",) + tuple(dispatch.PATHS)
WARMUP_ITERS = 2  # per path, not timed: compiling, Triton's JIT, the allocator
TIMED_ITERS = 5  # per path; 3 candidates x 7 iterations on a GPU
CHECK_SHAPE = (2, 4, 5, 7)
_checked = {}  # (path, device type, dtype) -> None (agrees) or why not


def candidates(device_type):
    """The paths `auto` chooses among on this device type, in the order they are timed."""
    if device_type == "cpu":
        return [dispatch.default_path("cpu", torch.float32)]
    return [name for name in ("triton", "compile", "python") if dispatch.can_run(name, device_type, torch.float32)]


def path_problem(name, device, dtype):
    """None when path `name` agrees with frn_reference on `device` in `dtype` (forward and every
    gradient, with and without TLU, fixed and learnable eps, exact ties; its TLU after an add against
    tlu_reference; its fused block end, where it has one, against frn_add_tlu_reference), else why
    not. Checked once per path, device type and dtype."""
    device = torch.device(device)
    key = (name, device.type, dtype)
    if key not in _checked:
        _checked[key] = _problem(name, device, dtype)
    return _checked[key]


def _problem(name, device, dtype):
    fn = dispatch.PATHS[name]
    cases = [make_case(CHECK_SHAPE, dtype, learnable_eps, tlu, device=device)
             for learnable_eps, tlu in ((False, True), (True, True), (False, False), (True, False))]
    cases.append(tie_case(CHECK_SHAPE, dtype, device=device))
    try:
        for x, params, dz in cases:
            assert_agree(x, params, dz, outputs_and_grads(fn, x, params, dz),
                         outputs_and_grads(frn_reference, x, params, dz))
        with dispatch.force_impl(name):
            assert_tlu_agrees(dispatch.tlu_function, *tlu_tie_case(CHECK_SHAPE, dtype, device=device))
        fused = dispatch.FUSED_ADD_TLU.get(name)  # its own block end; the others' is FRN, add and TLU
        if fused is not None and dtype in (torch.float32, torch.float64):  # fp16: the reference rounds twice
            for learnable_eps, ties in ((False, False), (True, False), (True, True)):
                x, params, dz = block_end_case(CHECK_SHAPE, dtype, learnable_eps, ties, device=device)
                assert_agree(x, params, dz, outputs_and_grads(fused, x, params, dz, BLOCK_END_ARGS),
                             outputs_and_grads(frn_add_tlu_reference, x, params, dz, BLOCK_END_ARGS))
    except Exception as e:  # noqa: BLE001  (whatever goes wrong leaves the path out, named)
        what = "disagrees with frn_reference" if isinstance(e, AssertionError) else "raised"
        first_line = str(e).splitlines()[0] if str(e) else ""
        return f"{what} in {str(dtype).replace('torch.', '')}: {type(e).__name__}: {first_line}"
    return None


def _device_of(cfg):
    return torch.device(cfg.MODEL.DEVICE)


def choice_file_candidates(cfg):
    """Where a run's recorded choice may be: beside MODEL.WEIGHTS, then in OUTPUT_DIR."""
    paths = []
    weights = cfg.MODEL.WEIGHTS
    if weights and os.path.isfile(weights):
        paths.append(os.path.join(os.path.dirname(os.path.abspath(weights)), CHOICE_FILE))
    paths.append(os.path.join(cfg.OUTPUT_DIR, CHOICE_FILE))
    return paths


def read_choice(path, device_type):
    """The path recorded in the frn_path.json at `path` for device_type, or None."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and record.get("device_type") == device_type and record.get("choice") in dispatch.PATHS:
        return record["choice"]
    return None


def recorded_choice(cfg):
    """The path recorded by the run (frn_path.json) for cfg's device type, or None."""
    device_type = _device_of(cfg).type
    return next(filter(None, (read_choice(path, device_type) for path in choice_file_candidates(cfg))), None)


def configured_impl(cfg):
    impl = str(cfg.MODEL.FRN.get("IMPL", "auto")).lower()
    if impl not in IMPLS:
        raise ValueError(f"MODEL.FRN.IMPL is {cfg.MODEL.FRN.IMPL!r}; valid values: {', '.join(IMPLS)}")
    return impl


def use_configured_path(cfg):
    """Makes MODEL.FRN.IMPL the process's FRN path; under `auto`, the run's recorded choice, else the
    static default. Returns the path configured (None: the static default)."""
    impl = configured_impl(cfg)
    name = recorded_choice(cfg) if impl == "auto" else impl
    dispatch.configure(name)
    return name


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class FRNPathChoice(HookBase):
    """MODEL.FRN.IMPL `auto` in training: checks the candidate paths, times each over the first
    training iterations, and makes the fastest the run's path (see the module's docstring).

    names: the candidates (default: `candidates(device)`); dtypes: those the model's FRN layers see
    (fp32, and the AMP dtype); clock: seconds as a float (time.perf_counter; the tests inject one).
    """

    def __init__(self, output_dir, device, dtypes=(torch.float32,), names=None, warmup=WARMUP_ITERS,
                 timed=TIMED_ITERS, clock=time.perf_counter):
        self.output_dir, self.device, self.dtypes = output_dir, torch.device(device), tuple(dtypes)
        self.names = list(candidates(self.device.type) if names is None else names)
        self.warmup, self.timed, self.clock = warmup, timed, clock
        self.schedule = []  # (path, timed?) per iteration still to run
        self.times = {}  # path -> [seconds per timed iteration]
        self.problems = {}
        self._current = self._start = None

    @classmethod
    def from_config(cls, cfg, **kwargs):
        dtypes = [torch.float32]
        if cfg.SOLVER.AMP.ENABLED:
            dtypes.append(torch.bfloat16 if _device_of(cfg).type == "cpu" else torch.float16)
        return cls(cfg.OUTPUT_DIR, _device_of(cfg), dtypes, **kwargs)

    # --- before training: what can run, and the schedule of timed iterations

    def before_train(self):
        trainer = self.trainer
        if dispatch.forced_path():
            logger.info("frn_det: FRN_DET_IMPL forces the FRN path %r; MODEL.FRN.IMPL auto chooses nothing",
                        dispatch.forced_path())
            return
        # a resumed run keeps its own record (OUTPUT_DIR's, not one beside MODEL.WEIGHTS); rank 0's:
        # other machines may lack its file
        own = read_choice(os.path.join(self.output_dir, CHOICE_FILE), self.device.type) if trainer.start_iter > 0 else None
        recorded = comm.all_gather(own)[0]
        if recorded is not None:
            dispatch.configure(recorded)
            logger.info("frn_det: FRN path %r, as chosen at the start of this run (%s)", recorded, CHOICE_FILE)
            return
        if torch.are_deterministic_algorithms_enabled():
            return self._decide(dispatch.default_path(self.device.type, self.dtypes[0]),
                                "deterministic algorithms: the static default, not timed")
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            self.problems = self._problems_on_all_ranks()  # random cases, without touching training's RNG
        for name, why in self.problems.items():
            logger.warning("frn_det: FRN path %r left out of the choice: %s", name, why)
        runnable = [n for n in self.names if n not in self.problems]
        if not runnable:
            return self._decide(dispatch.default_path(self.device.type, self.dtypes[0]),
                                "no candidate agreed with frn_reference: the static default")
        if len(runnable) == 1:
            return self._decide(runnable[0], "the only candidate that runs here, not timed")
        per_path = self.warmup + self.timed
        if len(runnable) * per_path > trainer.max_iter - trainer.start_iter:
            default = dispatch.default_path(self.device.type, self.dtypes[0])
            return self._decide(default if default in runnable else runnable[0],
                                f"too few iterations to time {len(runnable)} paths, not timed")
        self.schedule = [(name, i >= self.warmup) for name in runnable for i in range(per_path)]
        self.times = {name: [] for name in runnable}

    def _problems_on_all_ranks(self):
        """{path: why} for each candidate that fails its check on any process (all processes drop it)."""
        mine = {}
        for name in self.names:
            if name not in dispatch.PATHS:
                mine[name] = f"no such path (valid: {', '.join(dispatch.PATHS)})"
                continue
            for dtype in self.dtypes:
                if not dispatch.can_run(name, self.device.type, dtype):
                    why = f"can't run on {self.device.type} in {str(dtype).replace('torch.', '')}"
                else:
                    why = path_problem(name, self.device, dtype)
                if why:
                    mine[name] = why
                    break
        merged = {}
        for rank, problems in enumerate(comm.all_gather(mine)):
            for name, why in problems.items():
                merged.setdefault(name, why if rank == 0 else f"on rank {rank}: {why}")
        return merged

    # --- the timed iterations

    def before_step(self):
        if not self.schedule:
            return
        self._current = self.schedule[0]
        dispatch.configure(self._current[0])
        _synchronize(self.device)
        self._start = self.clock()

    def after_step(self):
        if self._current is None:
            return
        _synchronize(self.device)
        seconds = self.clock() - self._start
        name, timed = self._current
        if timed:
            self.times[name].append(seconds)
        self.schedule.pop(0)
        self._current = None
        if not self.schedule:
            medians = {n: statistics.median(ts) for n, ts in self.times.items()}
            self._decide(min(medians, key=medians.get), "the lowest median iteration time")

    # --- the choice

    def _decide(self, name, reason):
        name = comm.all_gather(name)[0]  # rank 0's
        dispatch.configure(name)
        record = {
            "device_type": self.device.type,
            "device": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "choice": name,
            "reason": reason,
            "candidates": self.names,
            "left_out": self.problems,
            "warmup_iterations": self.warmup,
            "timed_iterations": {n: ts for n, ts in self.times.items()},
            "median_seconds": {n: statistics.median(ts) for n, ts in self.times.items() if ts},
            "iteration": self.trainer.iter if self.trainer is not None else None,
        }
        logger.info("frn_det: FRN path %r (%s)\n%s", name, reason, choice_table(record))
        if comm.is_main_process():
            os.makedirs(self.output_dir, exist_ok=True)
            with open(os.path.join(self.output_dir, CHOICE_FILE), "w") as f:
                json.dump(record, f, indent=1)
        self.record = record
        return record


def choice_table(record):
    """The choice as a small table: each candidate, its check, its median iteration time."""
    lines = ["| FRN path | check | median s/iter | chosen |", "| --- | --- | ---: | --- |"]
    for name in record["candidates"]:
        median = record["median_seconds"].get(name)
        lines.append(f"| {name} | {record['left_out'].get(name, 'agrees')} | "
                     f"{'-' if median is None else f'{median:.4g}'} | {'yes' if name == record['choice'] else ''} |")
    if record["choice"] not in record["candidates"]:
        lines.append(f"| {record['choice']} | | - | yes |")
    return "\n".join(lines)
