"""Cost of the FRN health monitor (FRN_MONITOR): training iterations of a config's model with and
without the monitor's recording, interleaved, and the overhead at the monitor's period.

  python tools/benchmark_monitor.py                      # the demo model (R18 FPN, 8 images of 128 px)
  python tools/benchmark_monitor.py --config-file configs/retinanet_frn_2img.yaml --repeats 5 INPUT.MIN_SIZE_TRAIN "(512,)"

A monitored iteration costs `recorded / plain` of a plain one; with period P the training time grows
by (recorded / plain - 1) / P.
"""
import argparse
import statistics
import time

import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config-file", default="demo/retinanet_frn_R18_shapes.yaml",
                    help="a config path or a frn_det.model_zoo name (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=10, help="timed iterations of each kind (interleaved)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="process CPU time or wall time")
    ap.add_argument("opts", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)

    from detectron2.data import DatasetCatalog, DatasetMapper
    from detectron2.utils.events import EventStorage

    from frn_det.config import command_cfg
    from frn_det.engine import prepare_datasets, record_norm_stats
    from frn_det.modeling import build_model

    cfg, _ = command_cfg(args.config_file, args.opts, overrides=["MODEL.DEVICE", "cpu"])
    prepare_datasets(cfg.DATASETS.TRAIN)
    mapper = DatasetMapper(cfg, is_train=True)
    dicts = DatasetCatalog.get(cfg.DATASETS.TRAIN[0])[: args.batch]
    batch = [mapper(d) for d in dicts]
    model = build_model(cfg).train()
    params = [p for p in model.parameters() if p.requires_grad]

    # CPU time of this process (all its threads) by default: on a machine shared with other jobs it
    # moves far less than wall time; --clock wall for an idle machine
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    def step(record):
        start = clock()
        if record:
            with record_norm_stats(model):
                loss = sum(model(batch).values())
        else:
            loss = sum(model(batch).values())
        loss.backward()
        for p in params:
            p.grad = None
        return clock() - start

    times = {False: [], True: []}
    with EventStorage():  # RetinaNet's losses log to it
        step(False), step(True)  # warm-up
        for _ in range(args.repeats):
            for record in (False, True):
                times[record].append(step(record))
    plain, recorded = statistics.median(times[False]), statistics.median(times[True])
    ratio = recorded / plain
    print(f"model: {args.config_file}, {args.batch} images, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}, {args.clock} time")
    print(f"plain iteration {plain:.3f} s, monitored iteration {recorded:.3f} s ({ratio:.3f}x)")
    for period in (20, 40, 100):  # multiples of detectron2's writer period
        print(f"overhead at FRN_MONITOR.PERIOD {period}: {100 * (ratio - 1) / period:.2f}%")
    return plain, recorded
