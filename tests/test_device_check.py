"""The device check (tools/device/check.sh) stays runnable while no GPU is lent: its tiny dry run on
the CPU, and its step runner's handling of failing and hanging steps."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from frn_det.benchmark.step_runner import StepRunner

ROOT = Path(__file__).resolve().parents[1]


def test_failing_and_hanging_steps_are_recorded_and_the_rest_run(tmp_path):
    runner = StepRunner(tmp_path, budget=60)
    runner.run("fails", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], 30, 0)
    runner.run("hangs", [sys.executable, "-c", "import time; time.sleep(60)"], 5, 0)
    runner.run("works", [sys.executable, "-c", "print('fine')"], 30, 0)
    runner.run("late", [sys.executable, "-c", "print('never')"], 30, 3)  # 60 s less 3 later steps' 20 s
    runner.write()
    assert runner.not_ok() == ["fails", "hangs"]
    steps = json.loads((tmp_path / "report.json").read_text())["steps"]
    assert steps["fails"]["status"] == "failed" and "exit status 3" in steps["fails"]["error"]
    assert "boom" in steps["fails"]["log_tail"]
    assert steps["hangs"]["status"] == "timeout" and steps["hangs"]["seconds"] < 30
    assert steps["works"]["status"] == "ok"
    assert steps["late"]["status"] == "skipped" and "budget" in steps["late"]["error"]
    assert "## fails: failed" in (tmp_path / "report.md").read_text()


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="needs .venv (tools/setup_env.sh)")
def test_tiny_dry_run_writes_a_full_report(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path))
    proc = subprocess.run(["bash", str(ROOT / "tools" / "device" / "check.sh"), "--dry-run", "--tiny"], env=env,
                          capture_output=True, text=True, timeout=400)
    report = json.loads((tmp_path / "report.json").read_text())
    steps = report["steps"]
    assert report["mode"] == "tiny dry run"
    assert proc.returncode == 0, (proc.stdout[-2000:], {n: s.get("error") for n, s in steps.items()})
    assert list(steps) == ["wheels", "env", "cuda_tests", "frn_vs_reference", "benchmark_layers", "compile_sizes",
                           "retinanet", "frn_auto", "train_demo"]
    want_ok = {"env", "cuda_tests", "frn_vs_reference", "benchmark_layers", "retinanet", "frn_auto", "train_demo"}
    assert all(steps[n]["status"] == "ok" for n in want_ok), {n: steps[n]["status"] for n in steps}
    if (ROOT / ".whl").is_dir():
        assert "sal_detectron2-0.7.2-cp310-none-any.whl" in steps["wheels"]["result"]["installed"]
    assert steps["env"]["result"]["detectron2"] == "0.7.2"
    tests = steps["cuda_tests"]["result"]
    assert tests["tests"] >= 4 and tests["failures"] == tests["errors"] == 0
    frn = steps["frn_vs_reference"]["result"]
    # triton (through the interpreter) and python: fp32/bf16/fp16 x 2 shapes x eps/TLU variants each
    assert frn["cases_per_path"] == {"triton": 3 * 2 * 4, "python": 3 * 2 * 4} and frn["failures"] == 0
    layers = steps["benchmark_layers"]["result"]["markdown"]
    for method in ("FRN+TLU python", "FRN+TLU reference", "GN+ReLU", "BN+ReLU"):
        assert f"| fp32 | {method} |" in layers and f"| bf16-autocast | {method} |" in layers
    assert len(steps["benchmark_layers"]["result"]["targets"]) == 6  # 3 shapes x fp32, bf16-autocast
    models = steps["retinanet"]["result"]["markdown"]
    for amp in ("off", "on"):
        for model in ("RetinaNet FRN reference", "RetinaNet GN", "RetinaNet BN"):
            assert f"| {amp} | {model} |" in models
        assert re.search(rf"^- fastest FRN path, AMP {amp}: (cpp|reference) \(", models, re.M)
    auto = steps["frn_auto"]["result"]  # MODEL.FRN.IMPL auto: cpp and python timed, the faster chosen
    assert set(auto["median_seconds"]) == {"cpp", "python"} and not auto["left_out"]
    assert auto["choice"] == min(auto["median_seconds"], key=auto["median_seconds"].get)
    ap = steps["train_demo"]["result"]["headline"]["shapes_uniform_val"]
    assert 0 <= ap["AP"] <= 100 and "s/iter" in steps["train_demo"]["result"]  # None: too few iterations
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# Device check (tiny dry run)") and "## train_demo: ok" in md


def test_cuda_model_benchmark_times_every_frn_path():
    from frn_det.benchmark import models
    from frn_det.layers import dispatch

    names = models.model_names("cuda")
    paths = {models.MODEL_CONFIGS[n][1] for n in names} - {None}
    want = set(dispatch.PATHS) - {"cpp"}  # no C++ kernel off the CPU; triton only where it runs
    assert want - {"triton"} <= paths <= want
    assert {"RetinaNet GN", "RetinaNet BN"} <= set(names)
    times = {("off", n): 1.0 for n in names} | {("off", "RetinaNet BN"): 0.1, ("off", "RetinaNet FRN python"): 0.5}
    assert models.fastest_frn(times, "off", names) == "RetinaNet FRN python"  # BN is no FRN path
