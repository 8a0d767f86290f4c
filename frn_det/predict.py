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
import glob
import json
import logging
import os
import re
import sys
import time

import numpy as np
import torch

from frn_det.utils import write_atomic, write_json

logger = logging.getLogger("frn_det")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")  # MODEL.WEIGHTS; not a path or a glob


class PredictError(ValueError):
    """Bad input to the predictor: the message says what is wrong and what is valid."""


def import_cv2():
    """OpenCV, for image and video files; one clear message where it is missing."""
    try:
        import cv2
    except ImportError as e:
        raise PredictError(
            f"frn_det.predict needs OpenCV for image and video files ({e}): pip install opencv-python-headless "
            "(or opencv-python where a display is used)") from None
    return cv2


def read_checkpoint(path):
    """The model weights in a checkpoint file (a dict of tensors), or a PredictError saying why not."""
    try:
        if path.endswith(".pkl"):  # detectron2's model zoo / Detectron pickles
            import pickle

            with open(path, "rb") as f:
                data = pickle.load(f, encoding="latin1")
        else:
            data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001  (whatever the reader says: it is not a checkpoint)
        raise PredictError(f"MODEL.WEIGHTS {path} is not a checkpoint: it could not be read as one "
                           f"({type(e).__name__}: {str(e)[:200]}); use a model_final.pth that training wrote") from None
    weights = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise PredictError(f"MODEL.WEIGHTS {path} is not a checkpoint: it holds a {type(data).__name__}, "
                           "not model weights; use a model_final.pth that training wrote")
    return weights


def load_weights(model, weights, allow_untrained=False):
    """detectron2's DetectionCheckpointer.load, after checking that `weights` is a checkpoint holding
    weights of this model; an empty MODEL.WEIGHTS is refused unless allow_untrained."""
    from detectron2.checkpoint import DetectionCheckpointer

    if not weights:
        if not allow_untrained:
            raise PredictError("the config names no weights (MODEL.WEIGHTS is empty), so the model would be "
                               "untrained: add MODEL.WEIGHTS path/to/model_final.pth, or --allow-untrained if "
                               "an untrained model is what you want")
        logger.warning("MODEL.WEIGHTS is empty: predicting with an untrained model (--allow-untrained)")
        return
    if "://" not in weights:  # URLs (detectron2://, https://) are fetched by the checkpointer
        if not os.path.isfile(weights):
            raise PredictError(f"MODEL.WEIGHTS {weights}: no such file")
        # the file is read twice (here, then by the checkpointer): the price of one clear message
        checkpoint = read_checkpoint(weights)
        # Detectron pickles get renamed by detectron2's heuristics; DDP's "module." is stripped by fvcore
        if not weights.endswith(".pkl"):
            names = {n[len("module."):] if n.startswith("module.") else n for n in checkpoint}
            if not names & set(model.state_dict()):
                example = ", ".join(sorted(names)[:3])
                raise PredictError(f"MODEL.WEIGHTS {weights} holds none of this model's weights (it has "
                                   f"{len(names)} entries, e.g. {example}): was it trained with this config?")
    DetectionCheckpointer(model).load(weights)


class Predictor:
    """detectron2's DefaultPredictor for frn_det's configs (FRN options in every norm): config in,
    image in, predictions out.

        predictor = Predictor(cfg)                  # cfg.MODEL.WEIGHTS: the trained model
        outputs = predictor(cv2.imread("a.jpg"))    # outputs["instances"]: boxes, scores, classes
        outputs = predictor([im1, im2])             # a list of images: one batch, a list of outputs

    Images are (H, W, 3) uint8 arrays in `input_format` ("BGR", as OpenCV reads them, or "RGB").
    Preprocessing is the evaluator's: cfg.INPUT.FORMAT, then detectron2's test-time augmentation
    (ResizeShortestEdge to INPUT.MIN/MAX_SIZE_TEST), so that a val image gets the boxes and scores that
    Trainer.test evaluated. A batch pads its images to a common size, and FRN's statistics then count
    the padding: images of different sizes predict exactly as alone only one at a time.
    """

    def __init__(self, cfg, allow_untrained=False):
        import detectron2.data.transforms as T
        from detectron2.data import MetadataCatalog
        from detectron2.data.detection_utils import build_augmentation

        from frn_det.modeling import build_model

        self.cfg = cfg.clone()
        if self.cfg.INPUT.FORMAT not in ("BGR", "RGB"):
            raise PredictError(f"INPUT.FORMAT must be 'BGR' or 'RGB' for the predictor, got {self.cfg.INPUT.FORMAT!r}")
        self.model = build_model(self.cfg)
        self.model.eval()
        load_weights(self.model, self.cfg.MODEL.WEIGHTS, allow_untrained)
        # the test loader's DatasetMapper builds exactly these
        self.augmentations = T.AugmentationList(build_augmentation(self.cfg, is_train=False))
        names = tuple(self.cfg.DATASETS.TEST) + tuple(self.cfg.DATASETS.TRAIN)
        self.metadata = MetadataCatalog.get(names[0]) if names else None

    def preprocess(self, image, input_format="BGR"):
        """The model's input dict for one image, as the evaluator's DatasetMapper makes it."""
        import detectron2.data.transforms as T

        if input_format not in ("BGR", "RGB"):
            raise PredictError(f"input_format must be 'BGR' or 'RGB', got {input_format!r}")
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3):
            raise PredictError(f"an image must be an (H, W, 3) array, got {getattr(image, 'shape', type(image))}")
        if input_format != self.cfg.INPUT.FORMAT:
            image = image[:, :, ::-1]
        height, width = image.shape[:2]
        aug_input = T.AugInput(np.ascontiguousarray(image))
        self.augmentations(aug_input)
        tensor = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        return {"image": tensor, "height": height, "width": width}

    def __call__(self, images, input_format="BGR"):
        single = isinstance(images, np.ndarray)
        inputs = [self.preprocess(im, input_format) for im in ([images] if single else images)]
        with torch.no_grad():
            outputs = self.model(inputs)
        return outputs[0] if single else outputs


# ---- inputs and outputs ---------------------------------------------------------------------------


def expand_inputs(patterns):
    """Image files from files, folders (their images, sorted, not recursive) and globs (their images),
    in the order given, each once. A file named directly is taken whatever its extension."""
    files = []
    for pattern in patterns:
        path = os.path.expanduser(pattern)
        if not glob.has_magic(path) and not os.path.exists(path):
            raise PredictError(f"--input {pattern}: no such file or folder")
        if os.path.isdir(path):
            found = [os.path.join(path, n) for n in sorted(os.listdir(path))]
        elif os.path.isfile(path):
            files.append(path)
            continue
        else:
            found = sorted(glob.glob(path, recursive=True))
        files += [f for f in found if os.path.isfile(f) and f.lower().endswith(IMAGE_EXTENSIONS)]
    files = list(dict.fromkeys(files))
    if not files:
        raise PredictError(f"--input {' '.join(patterns)}: no image files matched (files, folders and globs "
                           f"are searched for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def output_names(files):
    """A file name in the output folder per input: its own, made unique, with an image extension."""
    names, used = [], set()
    for f in files:
        stem, ext = os.path.splitext(os.path.basename(f))
        ext = ext if ext.lower() in IMAGE_EXTENSIONS else ext + ".png"
        name, k = stem + ext, 1
        while name in used:
            name, k = f"{stem}_{k}{ext}", k + 1
        used.add(name)
        names.append(name)
    return names


class DatasetIds:
    """COCO ids for predictions.json: an image's id in the registered dataset it belongs to (found by
    its path under the dataset's image_root in the dataset's json_file; the config's test datasets
    first; nothing is loaded through DatasetCatalog, so nothing is generated), and the category ids of
    the config's first dataset, mapped back from the model's classes as COCOEvaluator does."""

    def __init__(self, cfg):
        from detectron2.data import MetadataCatalog

        self.names = list(dict.fromkeys(tuple(cfg.DATASETS.TEST) + tuple(cfg.DATASETS.TRAIN)))
        self._by_path = {}  # dataset name -> {real path: image_id}, read when an input lies under it
        self.category = category_ids(MetadataCatalog.get(self.names[0])) if self.names else None

    def image_id(self, path):
        from detectron2.data import MetadataCatalog

        real = os.path.realpath(path)
        for name in self.names:
            meta = MetadataCatalog.get(name)
            root, json_file = meta.get("image_root", None), meta.get("json_file", None)
            if not root or not json_file or not real.startswith(os.path.join(os.path.realpath(root), "")):
                continue
            if name not in self._by_path:
                try:
                    images = json.load(open(json_file))["images"]
                    self._by_path[name] = {os.path.realpath(os.path.join(root, i["file_name"])): i["id"] for i in images}
                except (OSError, ValueError, KeyError, TypeError) as e:
                    logger.warning("image ids of %s: %s can't be read (%s); file names are used", name, json_file, e)
                    self._by_path[name] = {}
            if real in self._by_path[name]:
                return self._by_path[name][real]
        return os.path.basename(path)

    def results(self, instances, image_id):
        from detectron2.evaluation.coco_evaluation import instances_to_coco_json

        results = instances_to_coco_json(instances, image_id)
        if self.category is not None:
            for r in results:
                r["category_id"] = self.category[r["category_id"]]
        return results


def category_ids(meta):
    """{model class index: the dataset's category id}: detectron2's thing_dataset_id_to_contiguous_id,
    else the one load_coco_json would make from the json's categories (a dataset not loaded yet); None
    (the model's indices are written, with a warning) without either."""
    to_contiguous = meta.get("thing_dataset_id_to_contiguous_id", None)
    if to_contiguous:
        return {v: k for k, v in to_contiguous.items()}
    json_file = meta.get("json_file", None)
    if json_file and os.path.isfile(json_file):
        try:
            return dict(enumerate(sorted(c["id"] for c in json.load(open(json_file))["categories"])))
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("categories of %s: %s can't be read (%s)", meta.name, json_file, e)
    logger.warning("%s has no category ids (thing_dataset_id_to_contiguous_id or a json_file): predictions.json "
                   "gets the model's class indices as category_id", meta.name)
    return None


def draw(image_rgb, instances, metadata, scale=1.0):
    """The image with its detections drawn by detectron2's Visualizer (RGB uint8)."""
    from detectron2.utils.visualizer import Visualizer

    return Visualizer(image_rgb, metadata, scale=scale).draw_instance_predictions(instances).get_image()


def write_image(cv2, path, image_rgb):
    ok, data = cv2.imencode(os.path.splitext(path)[1], np.ascontiguousarray(image_rgb[:, :, ::-1]))
    if not ok:
        raise OSError(f"OpenCV could not encode {path}")
    write_atomic(path, lambda f: f.write(data.tobytes()), fsync=False)


def open_video(cv2, path):
    """The capture, once its first frame decodes (else a PredictError)."""
    capture = cv2.VideoCapture(path)
    ok = capture.isOpened()
    if ok:
        ok, _ = capture.read()
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    if not ok:
        capture.release()
        why = ("no such file" if not os.path.exists(path) else
               "OpenCV can't open it as a video or decode a frame of it (format or codec)")
        raise PredictError(f"--video-input {path}: {why}")
    return capture


def refuse_overwriting(inputs, outputs):
    """A PredictError when a file to write is one of the inputs (--output is an input's folder)."""
    real = {os.path.realpath(p) for p in inputs}
    clash = [p for p in outputs if os.path.realpath(p) in real]
    if clash:
        raise PredictError(f"--output would overwrite the input {clash[0]}: choose another folder")


# ---- the command ----------------------------------------------------------------------------------


def setup_cfg(args):
    from frn_det.config import NO_CUDA_WARNING, build_cfg, cpu_without_cuda
    from frn_det.train_net import resolve_config

    cfg = build_cfg(resolve_config(args.config_file), args.opts)
    if cpu_without_cuda(cfg):
        logger.warning(NO_CUDA_WARNING)
    # as detectron2's demo: the threshold is the model's, so the JSON holds what is drawn
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = args.confidence_threshold
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = args.confidence_threshold
    cfg.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = args.confidence_threshold
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
    final = video_output(output, path)
    partial = final[:-4] + ".partial.mp4"  # renamed when complete: never a half-written video
    writer = cv2.VideoWriter(partial, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV can't write {partial} (mp4v)")
    results, frames, complete = [], 0, False
    try:
        with tqdm(total=total, desc="predict", unit="frame") as bar:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                instances = predictor(frame, "BGR")["instances"].to("cpu")
                results += ids.results(instances, f"{os.path.basename(path)}#{frames}")
                writer.write(np.ascontiguousarray(draw(frame[:, :, ::-1], instances, predictor.metadata)[:, :, ::-1]))
                frames += 1
                bar.update()
        complete = True
    finally:
        writer.release()
        capture.release()
        if not complete and os.path.exists(partial):
            os.remove(partial)
    os.replace(partial, final)
    return results, frames


def video_output(output, path):
    return os.path.join(output, os.path.splitext(os.path.basename(path))[0] + ".mp4")


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


def parse_args(argv=None):
    options, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def main(argv=None):
    """Runs the command; returns what summary.json holds. Bad input raises PredictError before anything
    is written; inputs that turn out not to decode are listed in summary.json (a PredictError when none
    does)."""
    from detectron2.utils.logger import setup_logger
    from tqdm import tqdm

    args = parse_args(argv)
    setup_logger(name="frn_det", abbrev_name="frn_det")
    cv2 = import_cv2()
    cfg = setup_cfg(args)
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


def cli(argv=None):
    try:
        main(argv)
    except (ValueError, OSError) as e:  # PredictError, config errors naming the key, unwritable output
        raise SystemExit(f"predict: {e}") from None


if __name__ == "__main__":
    cli()
