"""Checks that a config's datasets are on disk, with one message saying where they belong."""
import os

from detectron2.data import DatasetCatalog, MetadataCatalog


def check_datasets(names):
    for name in names:
        if name not in DatasetCatalog.list():
            raise KeyError(
                f"Dataset {name!r} is not registered. Registered: {', '.join(sorted(DatasetCatalog.list()))}"
            )
        meta = MetadataCatalog.get(name)
        json_file, image_root = meta.get("json_file", None), meta.get("image_root", None)
        if json_file is None:
            continue  # a user dataset with no files to check
        missing = [p for p in (json_file, image_root) if not os.path.exists(p)]
        if missing:
            root = os.getenv("DETECTRON2_DATASETS", "datasets")
            raise FileNotFoundError(
                f"Dataset {name!r} not found: missing {' and '.join(missing)}. detectron2 looks for COCO "
                f"under $DETECTRON2_DATASETS/coco (now {os.path.abspath(root)}/coco), laid out as "
                "coco/annotations/instances_{train,val}2017.json, coco/train2017/*.jpg, coco/val2017/*.jpg. "
                "Set DETECTRON2_DATASETS to the folder that holds coco/."
            )
