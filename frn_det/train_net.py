"""Trains and evaluates RetinaNet with FRN (or the GN/BN baselines), or any detectron2 model, with detectron2.

  python -m frn_det.train_net --config-file CONFIG [--num-gpus 8] [--resume] [KEY VALUE ...]
  python -m frn_det.train_net --config-file CONFIG --eval-only MODEL.WEIGHTS model_final.pth
  python -m frn_det.train_net --frn --config-file COCO-Detection/retinanet_R_50_FPN_1x.yaml
  python -m frn_det.train_net --frn GN_TLU --config-file new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py [key=value ...]

CONFIG is a path, a name in frn_det.model_zoo (e.g. retinanet_frn_2img.yaml), or else a name in
detectron2's model zoo; a yaml config (KEY VALUE overrides) or a LazyConfig .py (key=value overrides,
trained as detectron2's tools/lazyconfig_train_net.py does). --frn [NORM] switches the config to FRN
(frn_det.to_frn; NORM is "FRN" or another name of frn_det.layers.FRN_NORMS) before the overrides;
--keep-weights keeps its ImageNet weights (dropped by default: FRN trains from scratch). Multi-machine:
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
from frn_det.engine.lazy_train import lazy_main
from frn_det.evaluation import by_dataset, format_table, write_results


def report(cfg, results):
    if comm.is_main_process() and results:
        results = by_dataset(results, cfg.DATASETS.TEST)
        path = write_results(results, cfg.OUTPUT_DIR)
        logging.getLogger("frn_det").info("Results (COCO):\n%s\nwritten to %s", format_table(results), path)
    return results


def main(args):
    if args.config_file.endswith(".py"):
        return lazy_main(args)
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


def argument_parser():
    parser = default_argument_parser()
    parser.add_argument("--frn", nargs="?", const="FRN", default=None, metavar="NORM",
                        help="switch the config to FRN with frn_det.to_frn (NORM: FRN, or another name of "
                             "frn_det.layers.FRN_NORMS; default FRN), before the overrides")
    parser.add_argument("--keep-weights", action="store_true",
                        help="with --frn: keep the config's ImageNet weights (dropped by default)")
    return parser


def parse_args(argv=None):
    args = argument_parser().parse_args(argv)
    args.config_file = model_zoo.config_file_argument(args.config_file)
    return args


def cli(argv=None):
    args = parse_args(argv)
    print("Command Line Args:", args)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    cli()
