"""Export: tools/export_model.py traces RetinaNet-FRN with detectron2's TracingAdapter to
TorchScript and ONNX; TorchScript and onnxruntime give PyTorch's detections on the CPU."""
import os
import subprocess
import sys
from argparse import Namespace

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from PIL import Image

import frn_det
from coco_tree import ROOT, TINY_MODEL

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

CONFIG = os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")
# every anchor is a candidate, so that there are detections to compare even with random weights
OPTS = [*TINY_MODEL, "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0"]




@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list([*OPTS, "MODEL.DEVICE", "cpu"])
    model = build_model(cfg)
    with torch.no_grad():  # spread the scores out (no ties to order differently) and exercise TLU
        model.head.cls_score.bias.normal_(0, 1)
        for name, p in model.named_parameters():
            if name.endswith(".tau"):
                p.normal_(0, 0.3)
    DetectionCheckpointer(model, save_dir=str(tmp)).save("weights")
    rng = np.random.default_rng(0)
    image_path = str(tmp / "sample.jpg")
    Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)).save(image_path)

    from frn_det.export import model as tool
    paths = {fmt: tool.main(["--config-file", CONFIG, "--format", fmt, "--output", str(tmp / fmt),
                             "--sample-image", image_path, *OPTS, "MODEL.WEIGHTS", str(tmp / "weights.pth")])
             for fmt in ("torchscript", "onnx")}
    image = tool.sample_image(tool.export_cfg(Namespace(config_file=CONFIG, opts=OPTS)), image_path)
    return tool, model.eval(), paths, image


def assert_same_detections(actual, expected):
    boxes, classes, scores, image_size = (torch.as_tensor(np.asarray(a)) for a in actual)
    assert len(scores) == len(expected[2]) > 0
    torch.testing.assert_close(boxes, expected[0], rtol=1e-4, atol=1e-3)
    assert torch.equal(classes.long(), expected[1].long())
    torch.testing.assert_close(scores, expected[2], rtol=1e-4, atol=1e-5)
    assert torch.equal(image_size.long(), expected[3].long())


def test_exported_graphs_hold_no_custom_op(exported):
    _, _, paths, _ = exported
    ts = torch.jit.load(paths["torchscript"])
    assert "frn_det::" not in str(ts.inlined_graph)  # runs without frn_det's C++ op
    nodes = list(onnx_nodes(onnx.load(paths["onnx"]).graph))
    assert {n.domain for n in nodes} <= {"", "ai.onnx"}  # standard ONNX ops only
    assert {"NonMaxSuppression", "ReduceMean", "Max"} <= {n.op_type for n in nodes}  # NMS, FRN, TLU


def onnx_nodes(graph):
    for node in graph.node:
        yield node
        for attribute in node.attribute:  # If/Loop bodies (torchvision's NMS sits in one)
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from onnx_nodes(attribute.g)


def test_torchscript_and_onnxruntime_match_pytorch(exported):
    tool, model, paths, image = exported
    assert image.shape == (3, 38, 64)  # 48x80 resized as for testing (INPUT.MAX_SIZE_TEST 64)
    session = ort.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
    ts = torch.jit.load(paths["torchscript"])
    other = torch.rand_like(image) * 255  # another image of the traced size
    for x in (image, other):
        with torch.no_grad():
            expected = tool.traceable_model(model, x)(x)  # PyTorch, FRN's default (C++) path
            assert_same_detections(ts(x), expected)
        assert_same_detections(session.run(None, {"image": x.numpy()}), expected)
    # the outputs are the fields of detectron2's Instances, before detector_postprocess
    adapter = tool.traceable_model(model, image)
    flat = adapter(image)  # sets outputs_schema
    instances = adapter.outputs_schema(flat)[0]["instances"]
    assert set(instances.get_fields()) == {"pred_boxes", "scores", "pred_classes"}
    assert tuple(int(v) for v in instances.image_size) == tuple(image.shape[1:])


def test_export_of_the_demo_model_from_its_own_dataset(tmp_path):
    """A fresh process: the embedded dataset gives the sample image (generated on first use), and a
    forced FRN_DET_IMPL=cpp still traces the plain-op path."""
    env = {**os.environ, "FRN_DET_DATASETS": str(tmp_path / "data"), "FRN_DET_IMPL": "cpp"}
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "export_model.py"), "--config-file",
         os.path.join(ROOT, "configs", "demo", "retinanet_frn_R18_shapes.yaml"), "--format", "torchscript",
         "--output", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    graph = (tmp_path / "out" / "model_ts_IR.txt").read_text()
    assert "aten::_convolution" in graph and "frn_det::" not in graph
