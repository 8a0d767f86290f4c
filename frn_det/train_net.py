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
--num-machines N --machine-rank R --dist-url tcp://HOST:PORT, as in detectron2. --launcher slurm submits
the run as a SLURM job through submitit instead (--slurm-nodes machines, one task each; frn_det.engine.slurm)
and prints its id and logs; SLURM's time limits, preemptions and requeues resume it from its last checkpoint.
The checkout's tools/train_net.py and the `frn-det-train` command run this.
"""
import logging
import os

import frn_det  # noqa: I001  (first: registers FRN, the backbones, RetinaNetFRN; quiets detectron2's imports)
import detectron2.utils.comm as comm
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, launch

from frn_det import model_zoo
from frn_det.engine import Trainer, setup_cfg
from frn_det.engine.lazy_train import lazy_main
from frn_det.engine import slurm
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
    parser.add_argument("--launcher", choices=["local", "slurm"], default="local",
                        help="local: train here (detectron2's launch); slurm: submit the run as a SLURM job "
                             "through submitit, --slurm-nodes machines (default: %(default)s)")
    slurm.add_slurm_arguments(parser)
    return parser


def parse_args(argv=None):
    args = argument_parser().parse_args(argv)
    args.config_file = model_zoo.config_file_argument(args.config_file)
    return args


def output_and_device(args):
    """The run's OUTPUT_DIR and device as its config gives them (a LazyConfig's train.output_dir and
    train.device; "cuda" even where this machine has none: the job runs elsewhere)."""
    from frn_det.config import command_cfg, lazy_command_cfg

    kw = dict(frn=args.frn, keep_weights=args.keep_weights, cpu_fallback=False)
    if args.config_file.endswith(".py"):
        train = lazy_command_cfg(args.config_file, args.opts, **kw)[0].train
        return train.output_dir, train.get("device", "cuda")
    cfg = command_cfg(args.config_file, args.opts, **kw)[0]
    return cfg.OUTPUT_DIR, cfg.MODEL.DEVICE


def training_argv(args):
    """This command's arguments for one machine of the run, without the launcher's (a SLURM task adds
    its machine rank and address, frn_det.engine.slurm)."""
    argv = ["--config-file", args.config_file, "--num-gpus", str(args.num_gpus)]
    argv += ["--eval-only"] * args.eval_only + ["--keep-weights"] * args.keep_weights
    argv += [] if args.frn is None else ["--frn", args.frn]
    return [*argv, *args.opts]


def submit(args):
    """Submits the run as a SLURM job; returns the submitit job."""
    out, device = output_and_device(args)
    os.makedirs(out, exist_ok=True)
    folder = args.slurm_folder or os.path.join(out, "slurm")
    executor = slurm.slurm_executor(folder, args, args.num_gpus, os.path.basename(os.path.normpath(out)), device)
    job = slurm.submit(executor, slurm.TrainingCommand(training_argv(args), processes=args.num_gpus))
    slurm.record_job(out, job)
    print(f"Submitted SLURM job {job.job_id} ({args.slurm_nodes * args.slurm_tasks_per_node} machine(s) of "
          f"{args.num_gpus} process(es)); output in {out}, logs: {job.paths.stdout} and {job.paths.stderr}")
    return job


def cli(argv=None):
    args = parse_args(argv)
    print("Command Line Args:", args)
    if args.launcher == "slurm":
        return submit(args)
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    cli()
