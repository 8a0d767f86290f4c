"""Where a BN model's AP goes: the same trained weights evaluated with different normalization
statistics. If AP rises when BN normalizes each test batch (or image) with its own statistics, the
population statistics (running means) that BN uses at test do not fit the images it sees.

  python tools/bn_statistics.py --run BN=benchmarks/... (a folder with config.yaml, model_final.pth)

Modes, each a full COCO evaluation of the run's test set:
- running: detectron2's inference, BN with its running statistics (what the run reported);
- precise: the population statistics recomputed as detectron2's PreciseBN does (fvcore's
           update_bn_stats over --precise-iters training batches), then as `running`;
- batch:   BN layers normalize each test batch of --batch images with that batch's statistics, as in
           training (the rest of the model in inference mode);
- image:   the same with batches of one image: every image normalized by its own statistics (on small
           images a lower bound: the coarsest levels then have a handful of positions, e.g. P6 2x2 at 128 px).
Writes bn_statistics.json and table.md to --output.
"""
import argparse
import os
import sys

import torch

from frn_det.study.report_format import METRICS
from frn_det.utils import write_json

MODES = ("running", "precise", "batch", "image")


def use_batch_statistics(model):
    """BN layers normalize with each batch's statistics from now on, in eval mode too (which
    inference_on_dataset sets): torch's BN does so when it has no running statistics."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.running_mean = m.running_var = None
    return len(bns)


def evaluate(run_dir, mode, batch, precise_iters=200):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import build_detection_test_loader, build_detection_train_loader
    from detectron2.evaluation import COCOEvaluator, inference_on_dataset
    from detectron2.utils.events import EventStorage
    from fvcore.nn.precise_bn import update_bn_stats

    from frn_det.config import build_cfg
    from frn_det.engine import prepare_datasets
    from frn_det.modeling import build_model

    cfg = build_cfg(os.path.join(run_dir, "config.yaml"), ["MODEL.DEVICE", "cpu"])
    dataset = cfg.DATASETS.TEST[0]
    prepare_datasets([dataset])
    model = build_model(cfg)
    DetectionCheckpointer(model).load(os.path.join(run_dir, "model_final.pth"))
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise SystemExit(f"{run_dir}: the model has no BatchNorm layer")
    if mode == "precise":
        prepare_datasets(cfg.DATASETS.TRAIN)
        model.train()
        with EventStorage(), torch.no_grad():  # the model logs to the storage in training mode
            update_bn_stats(model, iter(build_detection_train_loader(cfg)), precise_iters)
    if mode in ("batch", "image"):
        use_batch_statistics(model)
    loader = build_detection_test_loader(cfg, dataset, batch_size=batch if mode == "batch" else 1)
    with torch.no_grad():
        results = inference_on_dataset(model, loader, COCOEvaluator(dataset, tasks=("bbox",), output_dir=None))
    return {k: results["bbox"][k] for k in METRICS}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, metavar="LABEL=DIR")
    ap.add_argument("--batch", type=int, default=8, help="test images per batch in the 'batch' mode")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--precise-iters", type=int, default=200, help="training batches of the 'precise' mode")
    ap.add_argument("--output", default=os.path.join("output", "bn_statistics"))
    args = ap.parse_args(argv)
    runs = {}
    for item in args.run:
        label, sep, folder = item.partition("=")
        if not sep or not os.path.exists(os.path.join(folder, "model_final.pth")):
            raise SystemExit(f"--run takes LABEL=DIR with DIR/model_final.pth and DIR/config.yaml; got {item!r}")
        runs[label] = folder
    table = {label: {mode: evaluate(folder, mode, args.batch, args.precise_iters) for mode in args.modes} for label, folder in runs.items()}
    os.makedirs(args.output, exist_ok=True)
    write_json(os.path.join(args.output, "bn_statistics.json"),
               {"command": ["python", "tools/bn_statistics.py", *(argv if argv is not None else sys.argv[1:])],
                "batch": args.batch, "results": table}, indent=2)
    lines = ["| run | " + " | ".join(f"AP ({mode})" for mode in args.modes) + " |", "|---|" + "---:|" * len(args.modes)]
    for label, row in table.items():
        lines.append(f"| {label} | " + " | ".join(f"{row[m]['AP']:.1f}" for m in args.modes) + " |")
    text = "\n".join(lines) + (f"\n\nbatch: {args.batch} test images per batch; precise: {args.precise_iters} training "
                                "batches of the run's IMS_PER_BATCH.\n")
    with open(os.path.join(args.output, "table.md"), "w") as f:
        f.write(text)
    print(text)
    return table
