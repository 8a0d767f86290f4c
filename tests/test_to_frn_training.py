"""detectron2's own configs switched to FRN by the training tool's --frn (yaml and LazyConfig) train 2
iterations on the embedded shapes and evaluate: RetinaNet, FCOS, Faster R-CNN C4, Mask R-CNN FPN (yaml
and the LSJ LazyConfig) and Cascade Mask R-CNN, each at ResNet-18 on 128 px images."""
import math

import pytest
import torch

from frn_det.config import build_cfg
from frn_det.data.render import SHAPE_CLASSES
from frn_det.train_net import main, parse_args

NUM_CLASSES = len(SHAPE_CLASSES)
SMALL_YACS = ["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64", "SOLVER.IMS_PER_BATCH", "2",
              "SOLVER.MAX_ITER", "2", "SOLVER.BASE_LR", "0.001", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "()",
              "SOLVER.CHECKPOINT_PERIOD", "1000", "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "128",
              "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128", "DATALOADER.NUM_WORKERS", "0",
              "TEST.EVAL_PERIOD", "0", "MODEL.RETINANET.NUM_CLASSES", str(NUM_CLASSES),
              "MODEL.ROI_HEADS.NUM_CLASSES", str(NUM_CLASSES), "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
              "MODEL.RPN.POST_NMS_TOPK_TRAIN", "64", "MODEL.RPN.POST_NMS_TOPK_TEST", "32",
              # after 2 iterations every score is low: keep them all, so that AP is a number
              "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"]


def _check(results, tasks, dataset=None):
    results = results[dataset] if dataset else results  # the yaml path reports per dataset
    assert set(results) == set(tasks), results
    for task in tasks:
        assert all(math.isfinite(results[task][k]) and 0 <= results[task][k] <= 100 for k in ("AP", "AP50"))


@pytest.mark.parametrize("name, extra, tasks", [
    ("COCO-Detection/retinanet_R_50_FPN_1x.yaml", [], ["bbox"]),
    ("COCO-Detection/faster_rcnn_R_50_C4_1x.yaml", ["MODEL.RESNETS.WIDTH_PER_GROUP", "16"], ["bbox"]),
    ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml", ["MODEL.FPN.OUT_CHANNELS", "64"], ["bbox", "segm"]),
    ("Misc/cascade_mask_rcnn_R_50_FPN_1x.yaml", ["MODEL.FPN.OUT_CHANNELS", "64"], ["bbox", "segm"]),
])
def test_yacs_config_trains_and_evaluates_with_frn(name, extra, tasks, tiny_shapes, tmp_path):
    args = parse_args(["--frn", "--config-file", name, *SMALL_YACS, *extra, "DATASETS.TRAIN", f"('{tiny_shapes}',)",
                       "DATASETS.TEST", f"('{tiny_shapes}',)", "OUTPUT_DIR", str(tmp_path)])
    _check(main(args), tasks, tiny_shapes)
    log = (tmp_path / "log.txt").read_text()
    assert "--frn FRN changed:" in log and 'MODEL.RESNETS.NORM: "FrozenBN" -> "FRN"' in log
    with open(tmp_path / "config.yaml") as f:
        saved = f.read()
    assert "NORM: FRN" in saved and "WEIGHTS: ''" in saved and "FREEZE_AT: 0" in saved
    # the saved config reloads (frn_det's commands read it) and builds the trained model, checked
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    reloaded = build_cfg(str(tmp_path / "config.yaml"))
    assert reloaded.MODEL.META_ARCHITECTURE == "FRNChecked" and reloaded.MODEL.FRN.META_ARCHITECTURE
    model = build_model(reloaded)
    DetectionCheckpointer(model).load(str(tmp_path / "model_final.pth"))
    trained = torch.load(tmp_path / "model_final.pth", weights_only=False)["model"]
    assert trained.keys() == model.state_dict().keys()
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())


def _lazy_opts(dataset, tmp_path, classes_key):
    return [f"dataloader.train.dataset.names={dataset}", f"dataloader.test.dataset.names={dataset}",
            "dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
            "train.max_iter=2", "train.eval_period=0", "train.checkpointer.period=1000", "optimizer.lr=0.001",
            "model.backbone.bottom_up.stages.depth=18", f"{classes_key}={NUM_CLASSES}",
            f"train.output_dir={tmp_path}"]


def test_fcos_lazy_config_trains_and_evaluates_with_frn(tiny_shapes, tmp_path):
    opts = _lazy_opts(tiny_shapes, tmp_path, "model.num_classes") + [
        "model.test_score_thresh=0.0",
        "dataloader.train.mapper.augmentations.0.short_edge_length=[128]",
        "dataloader.train.mapper.augmentations.0.max_size=128",
        "dataloader.test.mapper.augmentations.0.short_edge_length=128",
        "dataloader.test.mapper.augmentations.0.max_size=128"]
    trained = main(parse_args(["--frn", "--config-file", "COCO-Detection/fcos_R_50_FPN_1x.py", *opts]))
    _check(trained, ["bbox"])
    state = torch.load(tmp_path / "model_final.pth", weights_only=False)["model"]
    assert "head.cls_subnet.1.tau" in state and "backbone.bottom_up.res2.0.tlu.tau" in state  # FRN's, trained
    evaluated = main(parse_args(["--frn", "--eval-only", "--config-file", "COCO-Detection/fcos_R_50_FPN_1x.py", *opts,
                                 f"train.init_checkpoint={tmp_path / 'model_final.pth'}"]))
    _check(evaluated, ["bbox"])
    assert [evaluated["bbox"][k] for k in ("AP", "AP50")] == [trained["bbox"][k] for k in ("AP", "AP50")]


def test_lsj_lazy_config_trains_and_evaluates_with_frn(tiny_shapes, tmp_path):
    """detectron2's newest baseline (large-scale jitter, from scratch, SyncBN and AMP) with FRN, on the CPU
    (train.amp runs as bf16 autocast there)."""
    import importlib.util

    from frn_det.engine.lazy_train import setup_lazy_cfg, train_lazy

    size = 128
    opts = _lazy_opts(tiny_shapes, tmp_path, "model.roi_heads.num_classes") + [
        f"dataloader.train.mapper.augmentations.0.target_height={size}",
        f"dataloader.train.mapper.augmentations.0.target_width={size}",
        f"dataloader.train.mapper.augmentations.1.crop_size=[{size},{size}]",
        f"dataloader.test.mapper.augmentations.0.short_edge_length={size}",
        f"dataloader.test.mapper.augmentations.0.max_size={size}",
        "model.roi_heads.batch_size_per_image=32",
        "model.roi_heads.box_predictor.test_score_thresh=0.0",
        "model.proposal_generator.post_nms_topk=[64,32]"]
    cfg = setup_lazy_cfg(parse_args(["--frn", "--config-file", "new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py",
                                     *opts]))
    assert cfg.train.amp.enabled
    if importlib.util.find_spec("shapely") is None:  # FixedSizeCrop crops the polygons with shapely
        del cfg.dataloader.train.mapper.augmentations[1]
    _check(train_lazy(cfg), ["bbox", "segm"])


def test_a_lazy_config_with_frn_that_to_frn_did_not_convert_is_checked_before_training(tmp_path):
    """A LazyConfig whose head norm is set to FRN by hand keeps detectron2's RetinaNetHead, which applies
    ReLU after the norm: lazy training refuses it (detectron2's instantiate does not check it), and the
    same config converted by --frn trains that head without the ReLU."""
    from frn_det.config import lazy_command_cfg
    from frn_det.engine.lazy_train import instantiate_model

    opts = ["model.head.norm=FRN", "train.device=cpu", f"train.output_dir={tmp_path}"]
    cfg, _ = lazy_command_cfg("COCO-Detection/retinanet_R_50_FPN_1x.py", opts)
    with pytest.raises(ValueError, match=r"ReLU is applied directly .*\n  head.cls_subnet.*: use"):
        instantiate_model(cfg)
    cfg, notes = lazy_command_cfg("COCO-Detection/retinanet_R_50_FPN_1x.py", opts, frn="FRN")
    assert any("--frn FRN changed" in message for _, message in notes)
    model = instantiate_model(cfg)
    assert type(model.head).__name__ != "RetinaNetHead"
