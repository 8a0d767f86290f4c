"""Exports an FRN detector (RetinaNetFRN, or an R-CNN with an FRN backbone) to TorchScript or ONNX by
tracing, as detectron2's tools/deploy/export_model.py does with --export-method tracing.

  python tools/export_model.py --config-file configs/retinanet_frn_2img.yaml --format onnx \\
      --output export/ [--sample-image img.jpg] MODEL.WEIGHTS output/retinanet_frn_2img/model_final.pth

The exported model takes one image, a float (3, H, W) tensor in the config's INPUT.FORMAT and 0-255
range, already resized for testing (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST), and returns the detections
in that image's coordinates without detector_postprocess (do_postprocess=False): the tensors of
detectron2's flattened Instances, in the order of the logged outputs schema (for RetinaNet:
pred_boxes (K, 4) XYXY, pred_classes (K,), scores (K,)). Tracing fixes the input size.
"""
import argparse
import logging
import os
import warnings

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import build_detection_test_loader, detection_utils
import detectron2.data.transforms as T
from detectron2.export import STABLE_ONNX_OPSET_VERSION, TracingAdapter, dump_torchscript_IR
from detectron2.modeling import GeneralizedRCNN
from detectron2.modeling.meta_arch.dense_detector import DenseDetector
from detectron2.utils.logger import setup_logger

import frn_det  # noqa: F401  (registers FRN, the backbones and RetinaNetFRN)
from frn_det.config import command_cfg
from frn_det.engine import prepare_datasets
from frn_det.engine.frn_path import use_configured_path
from frn_det.layers import force_impl
from frn_det.modeling import build_model

logger = logging.getLogger("frn_det.export")


def export_cfg(args):
    """The config to export: command_cfg with the data loader in-process and the model on the CPU."""
    # traced on the CPU: the exported graph has no device-specific ops
    cfg, _ = command_cfg(args.config_file, args.opts, overrides=["DATALOADER.NUM_WORKERS", 0, "MODEL.DEVICE", "cpu"])
    cfg.freeze()
    return cfg


def inference_without_postprocess(model, inputs):
    """The model's detections before detector_postprocess (which rescales to "height"/"width")."""
    if isinstance(model, GeneralizedRCNN):
        return [{"instances": i} for i in model.inference(inputs, do_postprocess=False)]
    if isinstance(model, DenseDetector):  # RetinaNet(FRN): its forward always postprocesses
        images = model.preprocess_image(inputs)
        features = model.backbone(images.tensor)
        features = [features[f] for f in model.head_in_features]
        return [{"instances": i} for i in model.forward_inference(images, features, model.head(features))]
    raise TypeError(f"don't know how to export {type(model).__name__}")


def traceable_model(model, image):
    """detectron2's TracingAdapter: image tensor in, flat tuple of tensors out."""
    return TracingAdapter(model, [{"image": image}], inference_without_postprocess)


def export(model, image, fmt, output_dir):
    """Traces model.eval() on `image` and writes output_dir/model.ts or model.onnx; returns the path."""
    os.makedirs(output_dir, exist_ok=True)
    model.eval()
    adapter = traceable_model(model, image)
    # the reference path (plain aten ops) also for the untraced re-run that checks the trace
    with force_impl("reference"), torch.no_grad(), warnings.catch_warnings():
        # detectron2's shape checks become constants in the trace: expected, the input size is fixed
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        if fmt == "torchscript":
            path = os.path.join(output_dir, "model.ts")
            ts_model = torch.jit.trace(adapter, (image,))
            torch.jit.save(ts_model, path)
            dump_torchscript_IR(ts_model, output_dir)
        elif fmt == "onnx":
            path = os.path.join(output_dir, "model.onnx")
            # dynamo=False: the TorchScript-based exporter, which handles detectron2's traced control flow
            torch.onnx.export(adapter, (image,), path, opset_version=STABLE_ONNX_OPSET_VERSION,
                              input_names=["image"], dynamo=False)
        else:
            raise ValueError(f"unknown format {fmt!r}; valid: torchscript, onnx")
    logger.info("Wrote %s\nInputs schema: %s\nOutputs schema: %s", path, adapter.inputs_schema,
                adapter.outputs_schema)
    return path


def sample_image(cfg, path=None):
    """A test-time input: `path` resized as DefaultPredictor does, or the first image of DATASETS.TEST."""
    if path is None:
        prepare_datasets(cfg.DATASETS.TEST[:1])  # generates the embedded ones; one error if it is missing
        return next(iter(build_detection_test_loader(cfg, cfg.DATASETS.TEST[0])))[0]["image"].float()
    original = detection_utils.read_image(path, format=cfg.INPUT.FORMAT)
    aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)
    image = aug.get_transform(original).apply_image(original)
    return torch.as_tensor(image.astype("float32").transpose(2, 0, 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--format", choices=["torchscript", "onnx"], required=True)
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--sample-image", default=None, help="image to trace with (default: first test image)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS model.pth")
    args = parser.parse_args(argv)
    setup_logger(name="frn_det")
    cfg = export_cfg(args)
    use_configured_path(cfg)  # the eager model runs the training run's FRN path; the trace runs plain aten ops
    model = build_model(cfg)
    DetectionCheckpointer(model).resume_or_load(cfg.MODEL.WEIGHTS, resume=False)
    return export(model, sample_image(cfg, args.sample_image), args.format, args.output)
