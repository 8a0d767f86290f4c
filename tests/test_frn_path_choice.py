"""MODEL.FRN.IMPL auto (frn_det.engine.frn_path): the check against frn_reference, the timed training
iterations, the choice recorded and used again, on the CPU with injected paths and timings."""
import json
import logging
import os
import types

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.config import get_cfg

import frn_det
from frn_det.engine import frn_path
from frn_det.engine.frn_path import CHOICE_FILE, FRNPathChoice
from frn_det.layers import dispatch, frn_reference


def raises(*args):
    raise RuntimeError("no kernel image is available for execution on the device")


def wrong(x, weight, bias, tau=None, eps=1e-6, eps_l=None):
    return frn_reference(x, weight, bias, tau, eps, eps_l) * 1.05


def slow_python(*args):
    return dispatch.PATHS["python"](*args)


@pytest.fixture
def injected_paths(monkeypatch, fresh_choice):
    """PATHS with a path that raises, one that returns wrong values, and a second correct one."""
    for name, fn in (("raises", raises), ("wrong", wrong), ("slow_python", slow_python)):
        monkeypatch.setitem(dispatch.PATHS, name, fn)
    frn_path._checked.clear()
    yield ["python", "raises", "wrong", "slow_python"]
    frn_path._checked.clear()


class FakeClock:
    """Seconds that advance by the cost of the path running the iteration (the configured one)."""

    def __init__(self, costs, warmup_cost=100.0):
        self.costs, self.warmup_cost, self.t, self.calls = costs, warmup_cost, 0.0, {}

    def __call__(self):
        name = dispatch.configured()
        self.calls[name] = self.calls.get(name, 0) + 1
        # each iteration reads the clock twice, and takes what the second read adds; the first
        # iterations of a path are its warm-up
        warm = self.calls[name] <= 2 * frn_path.WARMUP_ITERS
        self.t += self.warmup_cost if warm else self.costs[name]
        return self.t


def train(hook, max_iter=40, start_iter=0):
    """The hook through detectron2's training loop order, each iteration running an FRN layer."""
    hook.trainer = types.SimpleNamespace(iter=start_iter, start_iter=start_iter, max_iter=max_iter)
    layer, seen = frn_det.layers.FRN(4), []
    hook.before_train()
    for it in range(start_iter, max_iter):
        hook.trainer.iter = it
        hook.before_step()
        seen.append(dispatch.active_impl())
        layer(torch.randn(2, 4, 3, 3)).sum().backward()
        hook.after_step()
    return seen


def test_the_check_leaves_out_paths_that_raise_or_disagree(injected_paths):
    assert frn_path.path_problem("python", "cpu", torch.float32) is None
    assert frn_path.path_problem("raises", "cpu", torch.float32).startswith("raised in float32: RuntimeError")
    assert "disagrees with frn_reference" in frn_path.path_problem("wrong", "cpu", torch.float32)
    assert "disagrees" in frn_path.path_problem("wrong", "cpu", torch.bfloat16)


def test_injected_timings_decide(injected_paths, tmp_path, caplog):
    clock = FakeClock({"python": 2.0, "slow_python": 1.0})  # the warm-up (100 s) is not timed
    hook = FRNPathChoice(str(tmp_path), "cpu", names=injected_paths, clock=clock)
    with caplog.at_level(logging.WARNING, logger="frn_det"):
        seen = train(hook)
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(left_out) == 2 and "'raises'" in left_out[0] and "'wrong'" in left_out[1]
    per_path = frn_path.WARMUP_ITERS + frn_path.TIMED_ITERS
    assert seen[:per_path] == ["python"] * per_path and seen[per_path:2 * per_path] == ["slow_python"] * per_path
    assert set(seen[2 * per_path:]) == {"slow_python"}  # the rest of the run
    record = json.loads((tmp_path / CHOICE_FILE).read_text())
    assert record["choice"] == "slow_python" and record["median_seconds"] == {"python": 2.0, "slow_python": 1.0}
    assert set(record["left_out"]) == {"raises", "wrong"} and record["device_type"] == "cpu"
    assert "| slow_python | agrees | 1 | yes |" in frn_path.choice_table(record)

    clock = FakeClock({"python": 1.0, "slow_python": 3.0})
    dispatch.configure(None)
    train(FRNPathChoice(str(tmp_path), "cpu", names=injected_paths, clock=clock))
    assert json.loads((tmp_path / CHOICE_FILE).read_text())["choice"] == "python"


def test_deterministic_runs_take_the_static_default(injected_paths, tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        seen = train(FRNPathChoice(str(tmp_path), "cpu", names=injected_paths, clock=FakeClock({})), max_iter=3)
    finally:
        torch.use_deterministic_algorithms(False)
    default = dispatch.default_path("cpu", torch.float32)
    assert seen == [default] * 3 and json.loads((tmp_path / CHOICE_FILE).read_text())["choice"] == default


def test_a_short_run_or_one_candidate_times_nothing(injected_paths, tmp_path):
    hook = FRNPathChoice(str(tmp_path), "cpu", names=injected_paths, clock=FakeClock({}))
    assert train(hook, max_iter=5) == ["python"] * 5 and hook.record["median_seconds"] == {}
    hook = FRNPathChoice(str(tmp_path), "cpu", clock=FakeClock({}))  # the CPU's own candidates
    train(hook, max_iter=3)
    assert hook.record["choice"] == dispatch.default_path("cpu", torch.float32) and not hook.times


def test_a_resumed_run_keeps_its_own_recorded_choice(injected_paths, tmp_path):
    """Its OUTPUT_DIR's record wins over the one beside MODEL.WEIGHTS that built the model; nothing is timed."""
    (tmp_path / CHOICE_FILE).write_text(json.dumps({"device_type": "cpu", "choice": "slow_python"}))
    dispatch.configure("python")  # as build_model configured it from another run's record
    clock = FakeClock({"python": 1.0, "slow_python": 9.0})
    seen = train(FRNPathChoice(str(tmp_path), "cpu", names=injected_paths, clock=clock), start_iter=10)
    assert set(seen) == {"slow_python"} and clock.calls == {}
    dispatch.configure(None)  # a fresh run in the same folder chooses again
    train(FRNPathChoice(str(tmp_path), "cpu", names=injected_paths, clock=clock))
    assert json.loads((tmp_path / CHOICE_FILE).read_text())["choice"] == "python"


def config(tmp_path, impl="auto", device="cpu"):
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_list(["MODEL.FRN.IMPL", impl, "MODEL.DEVICE", device, "OUTPUT_DIR", str(tmp_path)])
    return cfg


def test_the_recorded_choice_serves_evaluation_and_the_environment_wins(injected_paths, tmp_path, monkeypatch):
    cfg = config(tmp_path)
    assert frn_path.use_configured_path(cfg) is None and dispatch.active_impl() == dispatch.default_path(
        "cpu", torch.float32)
    (tmp_path / CHOICE_FILE).write_text(json.dumps({"device_type": "cpu", "choice": "slow_python"}))
    assert frn_path.use_configured_path(cfg) == "slow_python" and dispatch.active_impl() == "slow_python"
    assert frn_path.use_configured_path(config(tmp_path, device="cuda")) is None  # recorded for another device
    assert frn_path.use_configured_path(config(tmp_path, impl="reference")) == "reference"
    assert dispatch.active_impl() == "reference"
    monkeypatch.setenv("FRN_DET_IMPL", "python")
    dispatch.reset()
    frn_path.use_configured_path(cfg)
    assert dispatch.active_impl() == "python"
    with pytest.raises(ValueError, match="MODEL.FRN.IMPL is 'fast'; valid values: auto, reference"):
        frn_path.use_configured_path(config(tmp_path, impl="fast"))


def _rank(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    for name, fn in (("raises", raises), ("slow_python", slow_python)):
        dispatch.PATHS[name] = fn
    if rank == 1:  # fails its check on rank 1 only: left out on both
        dispatch.PATHS["wrong_on_1"] = wrong
    else:
        dispatch.PATHS["wrong_on_1"] = slow_python
    # each rank's own timings would pick another path; rank 0 decides
    costs = {"python": 1.0, "slow_python": 2.0} if rank == 0 else {"python": 2.0, "slow_python": 1.0}
    costs["wrong_on_1"] = 0.5
    hook = FRNPathChoice(out_dir, "cpu", names=["python", "raises", "slow_python", "wrong_on_1"],
                         clock=FakeClock(costs))
    seen = train(hook)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"choice": hook.record["choice"], "left_out": sorted(hook.record["left_out"]), "last": seen[-1]}, f)
    dist.destroy_process_group()


def test_two_processes_take_rank_zeros_choice(tmp_path):
    mp.spawn(_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1 == {"choice": "python", "left_out": ["raises", "wrong_on_1"], "last": "python"}
    assert json.loads((tmp_path / CHOICE_FILE).read_text())["choice"] == "python"


def test_the_choice_costs_at_most_two_percent_of_a_paper_schedule():
    # every CUDA candidate (triton, compile, python) warmed up and timed, against the shortest schedule
    # among the paper's configs; the iterations train as usual, only slower paths cost extra time
    import glob

    import yaml

    from coco_tree import ROOT

    schedules = [yaml.safe_load(open(p))["SOLVER"]["MAX_ITER"] for p in glob.glob(os.path.join(ROOT, "configs",
                                                                                             "retinanet_*.yaml"))]
    assert len(schedules) >= 9
    iterations = 3 * (frn_path.WARMUP_ITERS + frn_path.TIMED_ITERS)
    assert iterations <= 0.02 * min(schedules)
