#!/usr/bin/env python
"""Three steps of tools/device/check.py that have no tool of their own. Each prints one JSON line.

    python tools/device/steps.py env --device cuda
    python tools/device/steps.py frn --device cuda [--paths triton,compile,python] [--tiny]
    python tools/device/steps.py auto --device cuda [--model-depth 101 --model-size 1024]

`auto` runs MODEL.FRN.IMPL auto's choice (frn_det.engine.frn_path) on RetinaNet's training iteration
(2 images, SGD step included): each path checked, warmed up and timed, and the choice.

`frn` compares FRN paths against frn_reference with the checks of the tests (frn_det.layers.testing:
outputs and every gradient, fp32, bf16 and fp16) and exits 1 when one disagrees. On CPU tensors the
triton path needs TRITON_INTERPRET=1 (Triton's interpreter).
"""
import argparse
import importlib
import sys

import torch

from frn_det.layers import dispatch, frn_reference, path_torch, path_triton
from frn_det.layers.testing import assert_agree, make_case
from frn_det.layers.testing import outputs_and_grads as run
from frn_det.utils import json_text

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# odd, 2x2, 1x1 and (N, C) maps, a row longer than one Triton block, and the stem's long rows at 1024
SHAPES = [(2, 4, 9, 11), (2, 3, 2, 2), (2, 256, 16, 16), (3, 5), (2, 8, 1, 1), (1, 4, 70, 70), (2, 64, 512, 512)]
# The CPU dry run: Triton's interpreter runs one program per (n, c) row, so (2, 256, 16, 16) alone took
# most of the step there; 32 rows of 256 exercise the same kernels.
CPU_SHAPES = [(2, 4, 9, 11), (2, 3, 2, 2), (2, 16, 16, 16), (3, 5), (2, 8, 1, 1), (1, 4, 70, 70)]
TINY_SHAPES = [(2, 4, 9, 11), (3, 5)]
VARIANTS = [(False, True), (True, True), (False, False), (True, False)]  # (learnable_eps, tlu)
# The compile path's: each dtype and variant is a graph (dynamic sizes), checked at two shapes (what
# variable image sizes give); the two variants between them have every parameter's gradient.
COMPILE_SHAPES = [(2, 4, 9, 11), (2, 8, 5, 7)]
COMPILE_VARIANTS = [(True, True), (False, False)]


def env(args):
    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
            "default FRN path": dispatch.active_impl(args.device),
            "triton FRN path": path_triton.unavailable_reason(torch.device(args.device).type) or "available"}
    for name in ("triton", "detectron2", "fvcore", "pycocotools", "omegaconf", "hydra", "numpy", "cv2"):
        try:
            info[name] = getattr(importlib.import_module(name), "__version__", "present")
        except Exception as e:  # noqa: BLE001  (report what is missing, then fail below)
            info[name] = f"MISSING: {e}"
    print(json_text(info))
    return int(any(str(v).startswith("MISSING") for k, v in info.items() if k not in ("triton", "cv2")))


def frn(args):
    from torch._dynamo.utils import counters

    # Past dynamo's limit (8 graphs per function) the compile path quietly runs eager; every case here
    # is a new graph, and each should be checked compiled.
    torch._dynamo.config.recompile_limit = 128
    paths = args.paths.split(",")
    rows, failures = [], 0
    for path in paths:
        compile_path = path == "compile"
        # inductor on the CPU compiles each graph for seconds: there fp32 shows the path works, and the
        # GPU run checks every dtype
        for dtype in DTYPES if args.device == "cuda" or not compile_path else ["fp32"]:
            shapes = TINY_SHAPES if args.tiny else SHAPES if args.device == "cuda" else CPU_SHAPES
            for shape in COMPILE_SHAPES if compile_path else shapes:
                for learnable_eps, tlu in COMPILE_VARIANTS if compile_path else VARIANTS:
                    torch.manual_seed(0)
                    x, params, dz = make_case(shape, DTYPES[dtype], learnable_eps, tlu, device=args.device)
                    try:
                        got = run(dispatch.PATHS[path], x, params, dz)
                        assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))
                        error = None
                    except Exception as e:  # noqa: BLE001  (a mismatch or a crash: recorded, the rest go on)
                        error, failures = f"{type(e).__name__}: {e}"[:300], failures + 1
                    rows.append({"path": path, "dtype": dtype, "shape": list(shape), "learnable_eps": learnable_eps,
                                 "tlu": tlu, "ok": error is None, "error": error})
    compiled = None
    if "compile" in paths:  # CompiledOrEager falls back to eager for good when compiling fails
        compiled = not path_torch.compile_fell_back()
    per_path = {p: sum(r["path"] == p for r in rows) for p in paths}
    print(json_text({"cases": len(rows), "failures": failures, "cases_per_path": per_path,
                      "compile_compiled": compiled,
                      "graphs_compiled": counters["stats"]["unique_graphs"], "rows": rows}))
    return int(failures > 0 or compiled is False)


def auto(args):
    import tempfile
    import types

    from detectron2.utils.events import EventStorage

    from frn_det.benchmark.models import model_parts
    from frn_det.engine.frn_path import FRNPathChoice, choice_table

    build, inputs, _ = model_parts(args)
    model = build("RetinaNet FRN python")  # its config; the choice sets the path
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    with tempfile.TemporaryDirectory() as out, EventStorage():
        hook = FRNPathChoice(out, args.device, names=args.paths.split(",") if args.paths else None)
        iters = (hook.warmup + hook.timed) * len(hook.names) + 1  # and one on the choice
        hook.trainer = types.SimpleNamespace(iter=0, start_iter=0, max_iter=iters)
        hook.before_train()
        for it in range(iters):
            hook.trainer.iter = it
            hook.before_step()
            sum(model(inputs).values()).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            hook.after_step()
    record = hook.record
    print(json_text({"choice": record["choice"], "reason": record["reason"], "left_out": record["left_out"],
                     "median_seconds": record["median_seconds"], "device": record["device"],
                     "model": f"RetinaNet R{args.model_depth}-FPN, 2 images of {args.model_size}",
                     "table": choice_table(record)}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["env", "frn", "auto"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--paths", default=None,
                    help="FRN paths: `frn` checks them (default triton,compile,python), `auto` chooses among them "
                         "(default: frn_det.engine.frn_path.candidates)")
    ap.add_argument("--tiny", action="store_true", help="fewer shapes")
    ap.add_argument("--model-depth", type=int, default=101, help="auto: ResNet depth")
    ap.add_argument("--model-size", type=int, default=1024, help="auto: image side")
    ap.add_argument("--model-opts", nargs="*", default=None, help="auto: config KEY VALUE pairs on top")
    args = ap.parse_args()
    if args.step == "frn" and args.paths is None:
        args.paths = "triton,compile,python"
    sys.exit({"env": env, "frn": frn, "auto": auto}[args.step](args))


if __name__ == "__main__":
    main()
