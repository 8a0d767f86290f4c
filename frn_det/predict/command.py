"""Run a trained model on images or a video and look at what it detects: each image (or frame) drawn
with detectron2's Visualizer, and every detection in predictions.json (COCO's results format), as
detectron2's demo/demo.py does for its own configs.

  python -m frn_det.predict --config-file configs/demo/retinanet_frn_R18_shapes.yaml \\
      --input datasets/frn_shapes/uniform_val --output output/predict \\
      MODEL.WEIGHTS output/demo_frn_R18_shapes/model_final.pth
  python -m frn_det.predict --config-file CONFIG --input 'photos/*.jpg' img.png --output DIR MODEL.WEIGHTS W
  python -m frn_det.predict --config-file CONFIG --video-input clip.mp4 --output DIR MODEL.WEIGHTS W

--config-file is a path or a frn_det.model_zoo name. --input takes image files, folders (their images,
not recursive) and globs. Trailing KEY VALUE pairs override the config, as in train_net.py
(MODEL.WEIGHTS, MODEL.DEVICE cuda). --confidence-threshold sets the model's score threshold, as in
detectron2's demo: 0.05 keeps what COCOEvaluator evaluates. Writes, in --output: the drawn images
(the inputs' file names) or the drawn video (<name>.mp4), predictions.json (image_id from the dataset
the image belongs to, among the config's DATASETS, else the file name; "<file>#<frame>" for video
frames; category_id in the dataset's own ids; loadable by pycocotools' COCO.loadRes) and summary.json
(what ran, the speed, and the images that could not be decoded, which are skipped).
"""
import argparse
import logging
import os
import re
import sys
import time

from frn_det.engine.predictor import PredictError, Predictor
from frn_det.utils import write_json

from .dataset_ids import DatasetIds
from .files import (
    VideoWriter,
    draw,
    expand_inputs,
    import_cv2,
    open_video,
    output_names,
    refuse_overwriting,
    video_output,
    write_image,
)

logger = logging.getLogger("frn_det")
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")  # MODEL.WEIGHTS; not a path or a glob


def predict_cfg(args):
    """The config to predict with: command_cfg with the model's score thresholds at --confidence-threshold."""
    from frn_det.config import command_cfg

    # as detectron2's demo: the threshold is the model's, so the JSON holds what is drawn
    threshold = args.confidence_threshold
    cfg, notes = command_cfg(args.config_file, args.opts, overrides=[
        "MODEL.RETINANET.SCORE_THRESH_TEST", threshold, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", threshold,
        "MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH", threshold])
    for level, message in notes:
        logger.log(level, message)
    cfg.freeze()
    return cfg


def predict_images(predictor, ids, files, names, output, cv2, tqdm):
    """Each file predicted and drawn to output/<its name in names>; (results, skipped, images done)."""
    from detectron2.data.detection_utils import read_image

    results, skipped = [], []
    for path, name in zip(tqdm(files, desc="predict", unit="img"), names):
        try:
            image = read_image(path, format=predictor.cfg.INPUT.FORMAT)  # the evaluator's reader
        except Exception as e:  # noqa: BLE001  (PIL's errors for broken or non-image files vary)
            skipped.append({"file": path, "error": f"{type(e).__name__}: {e}"[:300]})
            tqdm.write(f"WARNING: skipped {path}: it can't be decoded as an image ({skipped[-1]['error']})")
            continue
        if image.ndim == 2 or image.shape[2] != 3:
            skipped.append({"file": path, "error": f"not a 3-channel image (shape {image.shape})"})
            tqdm.write(f"WARNING: skipped {path}: {skipped[-1]['error']}")
            continue
        instances = predictor(image, predictor.cfg.INPUT.FORMAT)["instances"].to("cpu")
        results += ids.results(instances, ids.image_id(path))
        rgb = image if predictor.cfg.INPUT.FORMAT == "RGB" else image[:, :, ::-1]
        write_image(cv2, os.path.join(output, name), draw(rgb, instances, predictor.metadata))
    return results, skipped, len(files) - len(skipped)


def predict_video(predictor, ids, capture, path, output, cv2, tqdm):
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    results, frames = [], 0
    try:
        with VideoWriter(cv2, video_output(output, path), fps, (width, height)) as video, \
                tqdm(total=total, desc="predict", unit="frame") as bar:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                instances = predictor(frame, "BGR")["instances"].to("cpu")
                results += ids.results(instances, f"{os.path.basename(path)}#{frames}")
                video.write(draw(frame[:, :, ::-1], instances, predictor.metadata)[:, :, ::-1])
                frames += 1
                bar.update()
    finally:
        capture.release()
    return results, frames


def split_overrides(argv):
    """(options, KEY VALUE overrides): the overrides start at the first config key (MODEL.WEIGHTS,
    SOLVER..., a top-level key of the config; not a file of that name), so that --input's list of files
    can end before them."""
    from detectron2.config import get_cfg

    from frn_det.config import add_frn_config

    tops = tuple(add_frn_config(get_cfg()).keys())
    for i, arg in enumerate(argv):
        if CONFIG_KEY.match(arg) and arg.split(".")[0] in tops and not os.path.exists(arg):
            return argv[:i], argv[i:]
    return argv, []


def parse_args(argv=None, prog=None):
    options, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="a config path or a frn_det.model_zoo name")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", help="image files, folders and globs")
    source.add_argument("--video-input", help="a video file")
    parser.add_argument("--output", required=True, help="the folder for the drawn images, predictions.json, summary.json")
    parser.add_argument("--confidence-threshold", type=float, default=0.5,
                        help="minimum score of a detection: sets the model's score thresholds, over the config's "
                             "(default: %(default)s, as detectron2's demo; 0.05 is COCOEvaluator's)")
    parser.add_argument("--allow-untrained", action="store_true",
                        help="predict even though MODEL.WEIGHTS is empty (an untrained model)")
    parser.add_argument("opts", nargs="*", help="config overrides (KEY VALUE ...), after the options")
    args = parser.parse_args(options)
    args.opts += overrides
    return args


def main(argv=None, prog=None):
    """Runs the command; returns what summary.json holds. Bad input raises PredictError before anything
    is written; inputs that turn out not to decode are listed in summary.json (a PredictError when none
    does)."""
    from detectron2.utils.logger import setup_logger
    from tqdm import tqdm

    args = parse_args(argv, prog)
    setup_logger(name="frn_det", abbrev_name="frn_det")
    cv2 = import_cv2()
    cfg = predict_cfg(args)
    if args.input:
        files = expand_inputs(args.input)
        names = output_names(files)
        refuse_overwriting(files, [os.path.join(args.output, n) for n in names])
    else:
        files = names = None
        refuse_overwriting([args.video_input], [video_output(args.output, args.video_input)])
    capture = open_video(cv2, args.video_input) if args.video_input else None
    try:
        predictor = Predictor(cfg, allow_untrained=args.allow_untrained)
    except BaseException:
        if capture is not None:
            capture.release()
        raise
    ids = DatasetIds(cfg)
    os.makedirs(args.output, exist_ok=True)

    start = time.perf_counter()
    if files is not None:
        results, skipped, done = predict_images(predictor, ids, files, names, args.output, cv2, tqdm)
        unit = "images"
    else:
        results, done = predict_video(predictor, ids, capture, args.video_input, args.output, cv2, tqdm)
        skipped, unit = [], "frames"
    seconds = time.perf_counter() - start
    summary = {"config": args.config_file, "weights": cfg.MODEL.WEIGHTS, "device": cfg.MODEL.DEVICE,
               "confidence_threshold": args.confidence_threshold, unit: done, "detections": len(results),
               "seconds": round(seconds, 3), f"{unit}_per_second": round(done / seconds, 3) if seconds else None,
               "skipped": skipped}
    write_json(os.path.join(args.output, "predictions.json"), results)
    write_json(os.path.join(args.output, "summary.json"), summary, indent=2)
    print(f"{done} {unit} in {seconds:.1f} s ({summary[f'{unit}_per_second']} {unit}/s), {len(results)} detections "
          f"at score >= {args.confidence_threshold:g}; drawn {unit}, predictions.json and summary.json in {args.output}")
    if skipped:
        print(f"{len(skipped)} file(s) skipped, not decodable as images:\n" +
              "\n".join(f"  {s['file']}: {s['error']}" for s in skipped))
    if not done:
        raise PredictError(f"none of the {len(skipped)} input(s) could be decoded as an image (listed in "
                           f"{os.path.join(args.output, 'summary.json')})")
    return summary


def cli(argv=None, prog=None):
    try:
        main(argv, prog)
    except (ValueError, OSError) as e:  # PredictError, config errors naming the key, unwritable output
        raise SystemExit(f"predict: {e}") from None


if __name__ == "__main__":
    cli()
