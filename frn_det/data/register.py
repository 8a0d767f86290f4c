"""The shapes datasets in detectron2's DatasetCatalog and MetadataCatalog, each registered once, by name.

Generation is lazy so that importing stays fast: `register_shapes_dataset` / `register_default_datasets`
register a DatasetCatalog function that generates the files (if missing or stale) before loading the
json. The metadata's `json_file` only exists after that, so code that builds a COCOEvaluator before
loading the dataset calls `ensure_generated(name)` first.
"""
import os

from .render import SHAPE_CLASSES
from .shapes import dataset_paths, generate_shapes_dataset

# name -> (split, num_images, seed, look); all 128 px, generated under default_dataset_root().
DEFAULT_DATASETS = {
    "shapes_train": ("train", 1200, 0, "photo"),
    "shapes_val": ("val", 200, 1, "photo"),
    "shapes_uniform_train": ("uniform_train", 1200, 0, "uniform"),
    "shapes_uniform_val": ("uniform_val", 200, 1, "uniform"),
    "shapes_real_train": ("real_train", 1200, 0, "real"),
    "shapes_real_val": ("real_val", 200, 1, "real"),
}


def default_dataset_root():
    """`$FRN_DET_DATASETS` if set, else `frn_shapes` under detectron2's dataset root
    (`$DETECTRON2_DATASETS`, default `datasets`, relative to the working directory as in detectron2;
    the checkout's commands run from the repo root, where `datasets/` is git-ignored)."""
    env = os.environ.get("FRN_DET_DATASETS")
    if env:
        return env
    return os.path.join(os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets")), "frn_shapes")


def register_shapes_dataset(name, root, split, num_images, image_size=128, seed=0, look="photo"):
    """Register `name` in detectron2's DatasetCatalog / MetadataCatalog, without generating anything yet.

    `DatasetCatalog.get(name)` generates the files if needed (see generate_shapes_dataset), then loads
    them with detectron2's load_coco_json. The metadata gets json_file, image_root, evaluator_type="coco"
    and thing_classes; json_file exists only once generated, so call `ensure_generated(name)` before
    building a COCOEvaluator for a dataset that may not be loaded yet. Like detectron2's own
    registration, registering a name twice raises an AssertionError.
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import load_coco_json

    spec = dict(root=str(root), split=split, num_images=num_images, image_size=image_size, seed=seed,
                look=look)
    image_root, json_file, _ = dataset_paths(root, split)

    def load():
        return load_coco_json(generate_shapes_dataset(**spec), str(image_root), name)

    DatasetCatalog.register(name, load)
    # the spec lives with the name in detectron2's catalog, for ensure_generated
    MetadataCatalog.get(name).set(json_file=str(json_file), image_root=str(image_root), evaluator_type="coco",
                                  thing_classes=list(SHAPE_CLASSES), frn_shapes=spec,
                                  # what load_coco_json sets on loading, known before it (predictions' ids)
                                  thing_dataset_id_to_contiguous_id={i + 1: i for i in range(len(SHAPE_CLASSES))})


def register_default_datasets(root=None):
    """Register the names in DEFAULT_DATASETS under `root` (default: default_dataset_root()).

    `import frn_det` calls it. Names already in DatasetCatalog are left as they are, so calling this
    twice is harmless; a `root` given explicitly for names that this module registered under another
    root is a ValueError (they would silently stay where they are). Returns the tuple of default names.
    """
    from detectron2.data import DatasetCatalog, MetadataCatalog

    given, root = root is not None, default_dataset_root() if root is None else root
    registered = set(DatasetCatalog.list())
    for name, (split, num_images, seed, look) in DEFAULT_DATASETS.items():
        if name not in registered:
            register_shapes_dataset(name, root, split, num_images, seed=seed, look=look)
            continue
        spec = MetadataCatalog.get(name).get("frn_shapes", None)
        if given and spec is not None and spec["root"] != str(root):
            raise ValueError(f"{name} is registered under {spec['root']} (the root read when frn_det was imported), "
                             f"not {root}: set FRN_DET_DATASETS before importing frn_det, or remove the names "
                             "from DatasetCatalog and MetadataCatalog first")
    return tuple(DEFAULT_DATASETS)


def ensure_generated(name):
    """Generate the files of a dataset registered by this module (if needed); return its json path.

    Returns None for any other name, so a trainer can call it for every name in cfg.DATASETS.TEST.
    """
    from detectron2.data import MetadataCatalog

    if name not in MetadataCatalog.list():
        return None
    spec = MetadataCatalog.get(name).get("frn_shapes", None)
    return None if spec is None else generate_shapes_dataset(**spec)
