"""The Predictor: detectron2's DefaultPredictor for frn_det's configs, with a checkpoint checked as it
is read. The command that runs it on files is frn_det.predict."""
import logging
import os

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer

logger = logging.getLogger("frn_det")


class PredictError(ValueError):
    """Bad input to the predictor: the message says what is wrong and what is valid."""


class CheckedCheckpointer(DetectionCheckpointer):
    """detectron2's DetectionCheckpointer whose file, read once by detectron2's own reader (.pth, and
    .pkl/.pyth from model zoos), must hold weights of this model: otherwise a PredictError says why."""

    def _load_file(self, filename):
        path = self._parsed_url_during_load.geturl()  # as given, where filename may be a download's
        try:
            data = super()._load_file(filename)
        except Exception as e:  # noqa: BLE001  (whatever the reader says: it is not a checkpoint)
            raise PredictError(f"MODEL.WEIGHTS {path} is not a checkpoint: it could not be read as one "
                               f"({type(e).__name__}: {str(e)[:200]}); use a model_final.pth that training wrote") from None
        weights = data.get("model") if isinstance(data, dict) else data
        if not isinstance(weights, dict) or not weights:
            raise PredictError(f"MODEL.WEIGHTS {path} is not a checkpoint: it holds a {type(weights).__name__}, "
                               "not model weights; use a model_final.pth that training wrote")
        # model-zoo files get renamed by detectron2's heuristics; DDP's "module." is stripped by fvcore
        if not filename.endswith(".pkl") and not data.get("matching_heuristics", False):
            names = {n[len("module."):] if n.startswith("module.") else n for n in weights}
            if not names & set(self.model.state_dict()):
                example = ", ".join(sorted(names)[:3])
                raise PredictError(f"MODEL.WEIGHTS {path} holds none of this model's weights (it has "
                                   f"{len(names)} entries, e.g. {example}): was it trained with this config?")
        return data


def load_weights(model, weights, allow_untrained=False):
    """The checkpoint `weights` loaded into model, read once and checked (CheckedCheckpointer); an
    empty MODEL.WEIGHTS is refused unless allow_untrained."""
    if not weights:
        if not allow_untrained:
            raise PredictError("the config names no weights (MODEL.WEIGHTS is empty), so the model would be "
                               "untrained: add MODEL.WEIGHTS path/to/model_final.pth, or --allow-untrained if "
                               "an untrained model is what you want")
        logger.warning("MODEL.WEIGHTS is empty: predicting with an untrained model (--allow-untrained)")
        return
    if "://" not in weights and not os.path.isfile(weights):  # URLs are fetched by the checkpointer
        raise PredictError(f"MODEL.WEIGHTS {weights}: no such file")
    CheckedCheckpointer(model).load(weights)


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

        from .frn_path import use_configured_path

        self.cfg = cfg.clone()
        if self.cfg.INPUT.FORMAT not in ("BGR", "RGB"):
            raise PredictError(f"INPUT.FORMAT must be 'BGR' or 'RGB' for the predictor, got {self.cfg.INPUT.FORMAT!r}")
        use_configured_path(self.cfg)  # the training run's FRN path, recorded beside its weights
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
