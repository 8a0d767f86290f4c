#!/usr/bin/env python
"""Trains and evaluates RetinaNet with FRN (or the GN/BN baselines) with detectron2.

  python tools/train_net.py --config-file configs/retinanet_frn_2img.yaml --num-gpus 8
  python tools/train_net.py --config-file configs/retinanet_frn_2img.yaml --eval-only MODEL.WEIGHTS model_final.pth
  python tools/train_net.py --config-file ... --resume   # continue from OUTPUT_DIR/last_checkpoint

Multi-machine: --num-machines N --machine-rank R --dist-url tcp://HOST:PORT, as in detectron2.
"""
import logging
import os
import warnings

warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)

import detectron2.utils.comm as comm  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.engine import default_argument_parser, launch  # noqa: E402

import frn_det  # noqa: E402,F401  (registers FRN, the backbones and RetinaNetFRN)
from frn_det.engine import Trainer, setup_cfg  # noqa: E402
from frn_det.evaluation import by_dataset, format_table, write_results  # noqa: E402


def report(cfg, results):
    if comm.is_main_process() and results:
        results = by_dataset(results, cfg.DATASETS.TEST)
        path = write_results(results, cfg.OUTPUT_DIR)
        logging.getLogger("frn_det").info("Results (COCO bbox):\n%s\nwritten to %s", format_table(results), path)
    return results


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return report(cfg, Trainer.test(cfg, model))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    # DefaultTrainer.train() returns results only with TEST.EXPECTED_RESULTS; EvalHook keeps them here
    return report(cfg, getattr(trainer, "_last_eval_results", None))


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
