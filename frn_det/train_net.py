"""Trains and evaluates RetinaNet with FRN (or the GN/BN baselines) with detectron2.

  python -m frn_det.train_net --config-file CONFIG [--num-gpus 8] [--resume] [KEY VALUE ...]
  python -m frn_det.train_net --config-file CONFIG --eval-only MODEL.WEIGHTS model_final.pth

CONFIG is a path, or a name in frn_det.model_zoo (e.g. retinanet_frn_2img.yaml). Multi-machine:
--num-machines N --machine-rank R --dist-url tcp://HOST:PORT, as in detectron2. The checkout's
tools/train_net.py and the `frn-det-train` command run this.
"""
import logging

import frn_det  # noqa: I001  (first: registers FRN, the backbones, RetinaNetFRN; quiets detectron2's imports)
import detectron2.utils.comm as comm
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, launch

from frn_det import model_zoo
from frn_det.engine import Trainer, setup_cfg
from frn_det.evaluation import by_dataset, format_table, write_results


def report(cfg, results):
    if comm.is_main_process() and results:
        results = by_dataset(results, cfg.DATASETS.TEST)
        path = write_results(results, cfg.OUTPUT_DIR)
        logging.getLogger("frn_det").info("Results (COCO):\n%s\nwritten to %s", format_table(results), path)
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


def cli(argv=None):
    args = default_argument_parser().parse_args(argv)
    args.config_file = model_zoo.config_file_argument(args.config_file)
    print("Command Line Args:", args)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    cli()
