"""A tiny COCO-shaped tree (COCO's categories, train2017/val2017 jpgs) and a tiny model, for running
tools/*.py end to end in seconds."""
import json
import os

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A small R18 RetinaNet-FRN so that a few iterations take seconds on the CPU.
TINY_MODEL = [
    "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64", "MODEL.FPN.OUT_CHANNELS", "32",
    "MODEL.RETINANET.NUM_CONVS", "1", "MODEL.FPN.SQUARE_PAD", "0",
    "MODEL.ANCHOR_GENERATOR.SIZES", "[[8], [16], [32], [64], [128]]",
    "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "64",
    "DATALOADER.NUM_WORKERS", "0", "TEST.DETECTIONS_PER_IMAGE", "20",
]
TINY = TINY_MODEL + [
    "SOLVER.IMS_PER_BATCH", "2", "SOLVER.BASE_LR", "0.01", "SOLVER.WARMUP_ITERS", "2", "SOLVER.REFERENCE_WORLD_SIZE", "0",
    "SOLVER.CHECKPOINT_PERIOD", "2",
]


def write_coco_split(root, split, n, seed):
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, split), exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        img = np.full((64, 64, 3), 40, np.uint8)
        x, y, w, h = (int(v) for v in rng.integers(4, 28, size=4))
        img[y : y + h, x : x + w] = (220, 60, 60)
        name = f"{i:012d}.jpg"
        Image.fromarray(img).save(os.path.join(root, split, name))
        images.append({"id": i + 1, "file_name": name, "width": 64, "height": 64})
        annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 3, "bbox": [x, y, w, h],
                            "area": w * h, "iscrowd": 0})
    categories = [{"id": c["id"], "name": c["name"], "supercategory": "x"} for c in COCO_CATEGORIES if c["isthing"]]
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    with open(os.path.join(root, "annotations", f"instances_{split}.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def make_coco_tree(root):
    write_coco_split(os.path.join(root, "coco"), "train2017", 6, 0)
    write_coco_split(os.path.join(root, "coco"), "val2017", 3, 1)
    return root
