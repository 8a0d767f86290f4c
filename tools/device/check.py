#!/usr/bin/env python
"""The device check: its steps, run by frn_det.benchmark.step_runner (each in a process of its own with
a time limit, the report rewritten after each). Run it through tools/device/check.sh.

    python tools/device/check.py [--dry-run [--tiny]] [--out DIR] [--budget SECONDS]

--dry-run: the same steps on the CPU with tiny sizes, with this Python's packages (the wheels are
installed into a temporary folder only to prove they install). --tiny: smaller still, for the test.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from frn_det.benchmark.step_runner import StepRunner

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "configs/demo/retinanet_frn_R18_shapes.yaml"
# The tests that skip without CUDA (tests/test_frn_paths.py: test_gpu_path_agrees_with_reference, every GPU path).
CUDA_TESTS = ["tests/test_frn_paths.py", "-k", "gpu"]


def last_json_line(log):
    """The step's result: its last output line that is JSON (warnings may follow it, e.g. at exit)."""
    for line in reversed(log.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise ValueError("the step printed no JSON result")


class Check(StepRunner):
    def __init__(self, args):
        self.args = args
        mode = "tiny dry run" if args.tiny else "dry run" if args.dry_run else "cuda"
        self.mode, self.device = mode, "cpu" if args.dry_run else "cuda"
        self.tmp = Path(tempfile.mkdtemp(prefix="frn_device_check_"))
        # the repo first: detectron2's wheel brings a top-level `tools` package of its own
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", FRN_DET_DATASETS=str(self.tmp / "data"))
        if args.dry_run:  # on a CPU shared with other jobs, OpenMP threads spin against them: 30x slower
            env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        super().__init__(args.out, args.budget, env, cwd=ROOT, title=f"Device check ({mode})",
                         info={"mode": mode, "device": self.device})

    # ---- the steps ---------------------------------------------------------------------------------
    def all_steps(self):
        a, py, dry = self.args, sys.executable, self.args.dry_run
        bench = [py, "tools/benchmark_frn.py", "--device", self.device]
        # RetinaNet R101-FPN at 1024 on the GPU; on the CPU a ResNet-18 with a narrow FPN at 128
        shape = (["--model-depth", "18", "--model-size", "128", "--model-opts", "MODEL.RESNETS.RES2_OUT_CHANNELS",
                  "64", "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.RETINANET.NUM_CONVS", "1"]
                 if dry else ["--model-depth", "101", "--model-size", "1024"])
        model = ["--model-repeats", "1" if dry else "3"] + shape
        steps = [
            ("wheels", 60, self.wheels),
            ("env", 60, lambda n, k: self.json_step(
                n, k, [py, "tools/device/steps.py", "env", "--device", self.device])),
            ("cuda_tests", 120, self.cuda_tests),
            # the triton path: on the GPU, and through Triton's interpreter on the CPU
            ("frn_vs_reference", 120 if dry else 180, lambda n, k: self.json_step(n, k, [
                py, "tools/device/steps.py", "frn", "--device", self.device,
                "--paths", ("triton,python" if a.tiny else "triton,python,compile") if dry else "triton,compile,python"]
                + (["--tiny"] if a.tiny else []), env={"TRITON_INTERPRET": "1"} if dry else None)),
            ("benchmark_layers", 120, lambda n, k: self.md_step(n, k, bench + [
                "--shapes", "target", "--dtypes", "fp32,bf16-autocast"]
                + (["--scale", "32" if a.tiny else "8", "--repeats", "2", "--min-time", "0.005", "--host-iters", "2"]
                   if dry else []))),
            ("compile_sizes", 120, lambda n, k: self.md_step(n, k, bench + [
                "--skip-layers", "--compile-sizes", "--dtypes", "fp32" if dry else "fp32,bf16-autocast"]
                + (["--scale", "16"] if dry else []), skip_if="tiny: inductor on this CPU takes too long")),
            ("retinanet", 180, lambda n, k: self.md_step(
                n, k, bench + ["--skip-layers", "--models", "--amp-modes", "off,on"] + model)),
            # MODEL.FRN.IMPL auto on the same iteration: each path's time and the choice (the CPU's
            # candidate is cpp alone: the dry run times cpp against python to run the whole choice)
            ("frn_auto", 120 if dry else 240, lambda n, k: self.json_step(n, k, [
                py, "tools/device/steps.py", "auto", "--device", self.device]
                + (["--paths", "cpp,python"] if dry else []) + shape)),
            ("train_demo", 240, self.train_demo),
        ]
        return steps

    def json_step(self, name, later, cmd, env=None):
        res = self.run(name, cmd, self.limit(name), later, env)
        if res:
            self.record(name, lambda: last_json_line(res[1]))

    def md_step(self, name, later, cmd, skip_if=None):
        if skip_if and self.args.tiny:
            self.steps[name] = {"status": "skipped", "error": skip_if}
            return
        md = self.out / "steps" / f"{name}.md"
        res = self.run(name, cmd + ["--out", md], self.limit(name), later)
        if res and res[0] == 0:
            self.record(name, lambda: md_result(md.read_text(), res[1]))

    def wheels(self, name, later):
        # dry run: this Python has the packages, and the cp312 wheels would not load on it; --all still
        # proves that every wheel installs without network or compiler
        target, wheels = self.tmp / "wheels", ROOT / ".whl"
        if self.args.dry_run and not wheels.is_dir():
            self.steps[name] = {"status": "skipped", "error": "no .whl here: bash tools/device/wheels.sh fills it"}
            return
        cmd = [sys.executable, "tools/device/install_wheels.py", wheels, target]
        self.json_step(name, later, cmd + (["--all"] if self.args.dry_run else []))
        if not self.args.dry_run:
            self.env["PYTHONPATH"] += os.pathsep + str(target)

    def cuda_tests(self, name, later):
        xml = self.out / "steps" / "cuda_tests.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *CUDA_TESTS, f"--junitxml={xml}"]
        res = self.run(name, cmd, self.limit(name), later)

        def counts():
            suite = ET.parse(xml).getroot()
            suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
            return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}

        if res:
            self.record(name, counts)
            if not self.args.dry_run and self.steps[name].get("result", {}).get("skipped"):
                self.steps[name].update(status="failed", error="CUDA tests were skipped on the GPU")

    def train_demo(self, name, later):
        out_dir = self.tmp / "train_demo"
        iters = ["SOLVER.MAX_ITER", "300"] if not self.args.dry_run else [
            "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1"]
        cmd = [sys.executable, "tools/train_net.py", "--config-file", CONFIG, "MODEL.DEVICE", self.device, *iters,
               "SOLVER.CHECKPOINT_PERIOD", "100000", "DATALOADER.NUM_WORKERS", "1" if self.args.dry_run else "4",
               "OUTPUT_DIR", out_dir]
        res = self.run(name, cmd, self.limit(name), later)
        if res and res[0] == 0:
            # the checkpoint stays behind: it is too large to come back from the device
            speed = last_match(r"Overall training speed: .*\((\d+\.\d+) s / it\)", res[1])
            self.record(name, lambda: {**json.loads((out_dir / "results.json").read_text()), "iterations": iters[1],
                                       "s/iter": speed})

    def limit(self, name):
        return self.args.limits.get(name, self._limits[name])

    def result_lines(self, name, result):
        if isinstance(result, dict) and "markdown" in result:
            return [result["markdown"], ""] + [f"- compile warning: {w}" for w in result["compile_warnings"]]
        if isinstance(result, dict) and "rows" in result:
            bad = [r for r in result["rows"] if not r["ok"]]
            return [f"{result['cases']} cases (path x dtype x shape x eps/TLU variant), {result['failures']} "
                    f"disagree with the reference; compile path compiled: {result['compile_compiled']} "
                    f"({result['graphs_compiled']} graphs); per path: "
                    + ", ".join(f"{p} {n}" for p, n in result.get("cases_per_path", {}).items()), ""] + [
                f"- {r['path']} {r['dtype']} {r['shape']} eps_l={r['learnable_eps']} tlu={r['tlu']}: {r['error']}"
                for r in bad[:20]]
        if isinstance(result, dict) and "table" in result:
            return [f"{result['model']} on {result['device']}: FRN path {result['choice']!r} ({result['reason']})",
                    "", result["table"], ""]
        if isinstance(result, dict) and "headline" in result:
            speed = f" ({result['s/iter']} s each)" if result["s/iter"] else ""
            return [f"{result['iterations']} iterations{speed}, then on {name}: AP {v['AP']:.2f}, "
                    f"AP50 {v['AP50']:.2f}, AP75 {v['AP75']:.2f}" for name, v in result["headline"].items()] + [""]
        return super().result_lines(name, result)

    def main(self):
        steps = self.all_steps()
        self._limits = {n: lim for n, lim, _ in steps}
        unknown = sorted(set(self.args.only or ()) | set(self.args.limits))
        unknown = [n for n in unknown if n not in self._limits]
        if unknown:
            raise SystemExit(f"unknown step(s) {', '.join(unknown)} in --only/--limit; valid: {', '.join(self._limits)}")
        try:
            for i, (name, _, fn) in enumerate(steps):
                if self.args.only and name not in self.args.only:
                    continue
                try:
                    fn(name, len(steps) - i - 1)
                except Exception as e:  # noqa: BLE001  (a bug in a step's own handling: recorded, go on)
                    self.steps.setdefault(name, {}).update(status="failed", error=f"{type(e).__name__}: {e}")
                self.write()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)  # data set, wheels, checkpoints
        bad = self.not_ok()
        print(f"device check ({self.mode}): {len(self.steps) - len(bad)} of {len(self.steps)} steps ok or skipped"
              + (f"; not ok: {', '.join(bad)}" if bad else "") + f"; report in {self.out}")
        return int(bool(bad))


def md_result(md, log):
    """A benchmark_frn.py report without its title, its target lines, and compile warnings from its log."""
    return {"markdown": md.split("\n\n", 1)[-1].strip(),
            "targets": [line for line in md.splitlines() if line.startswith("- ") and "target" in line],
            "compile_warnings": compile_warnings(log)}


def compile_warnings(log):
    """Log lines saying that torch.compile gave up on the FRN kernels (then eager ran, slower)."""
    pattern = re.compile(r"cache_size_limit|recompile_limit|torch\.compile of FRN failed")
    return sorted({line.strip()[:300] for line in log.splitlines() if pattern.search(line)})[:10]


def last_match(pattern, text):
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes")
    ap.add_argument("--tiny", action="store_true", help="with --dry-run: smaller still (the test)")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "output" / "device_check"))
    ap.add_argument("--budget", type=float, default=450, help="seconds for all steps (the device call allows 8 min)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these steps")
    ap.add_argument("--limit", nargs=2, action="append", default=[], metavar=("STEP", "SECONDS"),
                    help="another time limit for a step")
    args = ap.parse_args(argv)
    if args.tiny and not args.dry_run:
        ap.error("--tiny goes with --dry-run")
    args.limits = {name: float(s) for name, s in args.limit}
    return args


if __name__ == "__main__":
    sys.exit(Check(parse_args()).main())
