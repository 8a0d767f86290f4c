"""Render a grid PNG of the first images of each look of the shapes dataset, with their boxes drawn:
the ground truth, or a trained model's detections on the val images.

    .venv/bin/python tools/show_looks.py [--num 6] [--scale 2] [--out benchmarks/looks.png]
    .venv/bin/python tools/show_looks.py --config-file configs/demo/retinanet_frn_R18_shapes.yaml \\
        --weights output/demo_frn_R18_shapes/model_final.pth --out benchmarks/demo_predictions.png

One row per look (uniform, photo, real). Without a model: the images of its train split (seed 0), the
first `--num` of shapes_uniform_train, shapes_train and shapes_real_train. With --config-file and
--weights: the first images of the val splits (shapes_uniform_val, shapes_val, shapes_real_val) and
the detections scoring at least --threshold, with their scores (frn_det.engine.Predictor). The images
are generated into a temporary folder, so nothing under datasets/ is touched.
"""
import argparse
import json
import os
import tempfile

import numpy as np
from PIL import Image, ImageDraw

from frn_det.data import DEFAULT_DATASETS, SHAPE_CLASSES, generate_shapes_dataset

LOOKS = ("uniform", "photo", "real")
BOX_COLOURS = ("#ff2020", "#20ff20", "#2080ff", "#ffff00")  # per class, in SHAPE_CLASSES order
LABEL_WIDTH = 70
VAL_SEED = {look: seed for split, _, seed, look in DEFAULT_DATASETS.values() if split.endswith("val")}


def _ground_truth(coco, info):
    return [(a["bbox"], a["category_id"] - 1, None) for a in coco["annotations"] if a["image_id"] == info["id"]]


def _detections(predictor, image, threshold):
    instances = predictor(np.asarray(image), input_format="RGB")["instances"].to("cpu")
    keep = instances.scores >= threshold
    return [((x0, y0, x1 - x0, y1 - y0), int(c), float(s)) for (x0, y0, x1, y1), c, s in zip(
        instances.pred_boxes.tensor[keep].tolist(), instances.pred_classes[keep], instances.scores[keep])]


def render_grid(num=6, scale=2, seed=None, image_size=128, predictor=None, threshold=0.5):
    """The grid: ground-truth boxes of the train splits (seed 0 by default), or with a predictor its
    detections on the val splits (their seeds by default)."""
    cell = image_size * scale
    grid = Image.new("RGB", (LABEL_WIDTH + num * (cell + 4), len(LOOKS) * (cell + 4) + 16), "white")
    draw = ImageDraw.Draw(grid)
    for k, name in enumerate(SHAPE_CLASSES):  # legend
        draw.text((LABEL_WIDTH + k * 90, 2), name, fill=BOX_COLOURS[k])
    with tempfile.TemporaryDirectory() as root:
        for row, look in enumerate(LOOKS):
            look_seed = seed if seed is not None else VAL_SEED[look] if predictor else 0
            coco = json.load(open(generate_shapes_dataset(root, look, num, image_size, seed=look_seed, look=look)))
            top = 16 + row * (cell + 4)
            draw.text((4, top + cell // 2), look, fill="black")
            for col, info in enumerate(coco["images"]):
                image = Image.open(os.path.join(root, look, info["file_name"])).convert("RGB")
                boxes = _ground_truth(coco, info) if predictor is None else _detections(predictor, image, threshold)
                image = image.resize((cell, cell), Image.Resampling.NEAREST)  # pixels stay visible
                pen = ImageDraw.Draw(image)
                for (x, y, w, h), category, score in boxes:
                    # the outline runs along the box's outermost pixels
                    pen.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1],
                                  outline=BOX_COLOURS[category])
                    if score is not None:
                        pen.text((x * scale + 2, y * scale + 1), f"{score:.2f}", fill=BOX_COLOURS[category])
                grid.paste(image, (LABEL_WIDTH + col * (cell + 4), top))
    return grid


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=6, help="images per look")
    parser.add_argument("--scale", type=int, default=2, help="pixel magnification")
    parser.add_argument("--seed", type=int, default=None, help="the split's seed (default: train's 0, or val's)")
    parser.add_argument("--config-file", help="with --weights: draw this model's detections on the val images")
    parser.add_argument("--weights", help="the trained model (MODEL.WEIGHTS)")
    parser.add_argument("--threshold", type=float, default=0.5, help="minimum score of a drawn detection")
    parser.add_argument("--out", default="benchmarks/looks.png")
    args = parser.parse_args()
    predictor = None
    if args.config_file or args.weights:
        if not (args.config_file and args.weights):
            raise SystemExit("show_looks: --config-file and --weights go together (a model's detections)")
        from frn_det.config import command_cfg
        from frn_det.engine import Predictor

        try:
            predictor = Predictor(command_cfg(args.config_file, ["MODEL.WEIGHTS", args.weights])[0])
        except ValueError as e:  # the predictor's and the config's messages name what is wrong
            raise SystemExit(f"show_looks: {e}") from None
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    render_grid(args.num, args.scale, args.seed, predictor=predictor, threshold=args.threshold).save(args.out)
    print(args.out)
