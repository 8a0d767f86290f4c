"""COCO ids for the predict command's predictions.json: an image's id in the registered dataset it
belongs to, and the dataset's own category ids."""
import json
import logging
import os

logger = logging.getLogger("frn_det")


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
