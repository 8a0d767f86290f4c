"""Checks that a config's datasets are on disk and well-formed, with one message saying what is wrong
and where: the files before training (check_datasets), their content when loaded (load_dataset)."""
import contextlib
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

# Errors that loading a malformed COCO json raises inside pycocotools / detectron2's load_coco_json
# (json.JSONDecodeError is a ValueError; an unsupported top level is an AssertionError).
_LOAD_ERRORS = (ValueError, KeyError, TypeError, IndexError, AssertionError)


_COCO_LAYOUT = (  # detectron2's builtin COCO datasets (coco_*, keypoints_coco_*, ...)
    " detectron2 looks for COCO under $DETECTRON2_DATASETS/coco (now {root}/coco), laid out as "
    "coco/annotations/instances_{{train,val}}2017.json, coco/train2017/*.jpg, coco/val2017/*.jpg. "
    "Set DETECTRON2_DATASETS to the folder that holds coco/."
)


class MalformedDatasetError(ValueError):
    pass


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
            raise FileNotFoundError(f"Dataset {name!r} not found: missing {' and '.join(missing)}." + (
                _COCO_LAYOUT.format(root=os.path.abspath(os.getenv("DETECTRON2_DATASETS", "datasets")))
                if "coco" in name else " Check the paths it was registered with."
            ))
        problem = _json_shape_problem(json_file)
        if problem:
            raise MalformedDatasetError(f"Dataset {name!r}: {json_file} is not a COCO json file: {problem}")


def _json_shape_problem(path):
    """What is visibly wrong with a json object file, from its first and last bytes only: parsing
    COCO's 450 MB train json here would double its loading time. Catches truncated downloads."""
    size = os.path.getsize(path)
    if size == 0:
        return "the file is empty"
    with open(path, "rb") as f:
        head = f.read(256).lstrip()[:1]
        f.seek(max(0, size - 256))
        tail = f.read().rstrip()[-1:]
    if head != b"{":
        return f"it does not start with '{{' (starts with {head!r})"
    if tail != b"}":
        return "it does not end with '}' (truncated? download it again)"
    return None


def load_dataset(name):
    """DatasetCatalog.get(name), with one error naming the json file and the problem when its content
    is malformed (the loader's own errors name neither, or only the dataset)."""
    json_file = MetadataCatalog.get(name).get("json_file", None)
    try:
        dicts = DatasetCatalog.get(name)
    except _LOAD_ERRORS as e:
        if json_file is None or isinstance(e, MalformedDatasetError):
            raise
        raise MalformedDatasetError(
            f"Dataset {name!r}: {json_file} is not a valid COCO annotation file: {type(e).__name__}: {e}"
        ) from e
    problem = _records_problem(dicts) if json_file is not None else None
    if problem:
        raise MalformedDatasetError(f"Dataset {name!r}: {json_file} is not a valid COCO annotation file: {problem}")
    return dicts


@contextlib.contextmanager
def naming_malformed_datasets(names):
    """Inside, an error from loading the datasets `names` (e.g. in detectron2's data loader builders)
    becomes load_dataset's error naming the dataset, its json file and the problem. Only a failed load
    is repeated, one dataset at a time, to find the culprit; the catalog is left as it is."""
    try:
        yield
    except _LOAD_ERRORS as e:
        if isinstance(e, MalformedDatasetError):
            raise
        for name in names:
            load_dataset(name)
        raise


def _records_problem(dicts):
    if not dicts:
        return "it lists no images"
    for record in dicts:
        for ann in record.get("annotations", ()):
            for key in ("bbox", "category_id"):
                if key not in ann:
                    return f"an annotation of image {record.get('file_name')} has no {key!r}"
            if len(ann["bbox"]) != 4:
                return f"an annotation of image {record.get('file_name')} has bbox {ann['bbox']!r}, not [x, y, w, h]"
    return None
