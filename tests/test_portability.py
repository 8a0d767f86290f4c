"""Portability: several processes on the CPU (gloo), FRN backbones in other detectron2
models (a model-zoo Faster R-CNN, tools/extract_backbone.py), and the LazyConfig versions."""
import logging
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2 import model_zoo
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, get_cfg, instantiate
from detectron2.modeling import build_backbone, build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from torch.nn.parallel import DistributedDataParallel

import frn_det
from coco_tree import ROOT, TINY, TINY_MODEL, make_coco_tree
from frn_det.layers import FRN, TLU

BASE = os.path.join(ROOT, "configs", "Base-RetinaNet-FRN.yaml")
LAZY = os.path.join(ROOT, "configs", "lazy")




def yacs_cfg(path, *opts, tiny=True):
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_file(path)
    cfg.merge_from_list([*(TINY_MODEL if tiny else []), "MODEL.DEVICE", "cpu", *opts])
    return cfg


def synthetic_batch(n=2, size=64):
    """detectron2 training inputs: an image and one box each."""
    batch = []
    for i in range(n):
        instances = Instances((size, size))
        instances.gt_boxes = Boxes(torch.tensor([[4.0 + i, 6.0, 40.0, 44.0 - i]]))
        instances.gt_classes = torch.tensor([i % 3])
        batch.append({"image": torch.randint(0, 256, (3, size, size)).float(), "instances": instances})
    return batch


# --- several processes -------------------------------------------------------------------------------


def test_train_net_with_two_processes_on_the_cpu(tmp_path):
    datasets = make_coco_tree(str(tmp_path / "datasets"))
    out = tmp_path / "out"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--num-gpus", "2", "--config-file",
           os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml"), *TINY, "SOLVER.MAX_ITER", "2",
           "DATASETS.TEST", "()", "OUTPUT_DIR", str(out)]
    proc = subprocess.run(cmd, env=dict(os.environ, DETECTRON2_DATASETS=datasets), capture_output=True,
                          text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "World size: 2" in log and "batch_size=1" in log  # 2 images split over 2 gloo processes
    assert (out / "model_final.pth").exists()


def tiny_fpn():
    return build_backbone(yacs_cfg(BASE, "MODEL.BACKBONE.NAME", "build_resnet_frn_fpn_backbone",
                                   "MODEL.RESNETS.OUT_FEATURES", "['res2', 'res3', 'res4', 'res5']",
                                   "MODEL.FPN.IN_FEATURES", "['res2', 'res3', 'res4', 'res5']"))


def outputs_and_grads(model, x):
    out = model(x)
    # mean over this process's samples; DDP averages the gradients over the processes
    sum(v.pow(2).mean() for v in out.values()).backward()
    module = getattr(model, "module", model)
    return {k: v.detach() for k, v in out.items()}, {n: p.grad for n, p in module.named_parameters()}


def _ddp_half_batch(rank, init_file, tmp):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    model = tiny_fpn().train()
    model.load_state_dict(torch.load(os.path.join(tmp, "state.pth")))
    x = torch.load(os.path.join(tmp, "x.pth"))
    half = len(x) // 2
    out, grads = outputs_and_grads(DistributedDataParallel(model), x[rank * half:(rank + 1) * half])
    torch.save((out, grads), os.path.join(tmp, f"rank{rank}.pth"))
    dist.destroy_process_group()


def test_frn_outputs_and_gradients_do_not_depend_on_the_split_across_processes(tmp_path):
    model = tiny_fpn().train()
    with torch.no_grad():  # non-trivial FRN parameters
        for m in model.modules():
            if isinstance(m, (FRN, TLU)):
                for p in m.parameters():
                    p.normal_(0, 0.5)
    x = torch.randn(4, 3, 64, 64) * torch.tensor([1.0, 30.0, 0.1, 5.0]).view(4, 1, 1, 1)  # unlike samples
    torch.save(model.state_dict(), tmp_path / "state.pth")
    torch.save(x, tmp_path / "x.pth")
    mp.spawn(_ddp_half_batch, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)

    full_out, full_grads = outputs_and_grads(model, x)
    (out0, grads0), (out1, _) = (torch.load(tmp_path / f"rank{r}.pth") for r in (0, 1))
    for name in full_out:  # per-sample outputs: the same whichever process ran them
        torch.testing.assert_close(torch.cat([out0[name], out1[name]]), full_out[name], rtol=1e-5, atol=1e-5)
    for name, grad in full_grads.items():  # no synchronisation needed beyond DDP's gradient average
        torch.testing.assert_close(grads0[name], grad, rtol=1e-4, atol=1e-6, msg=name)


# --- FRN backbones in other detectron2 models --------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.text = ""

    def emit(self, record):
        self.text += record.getMessage() + "\n"


def test_model_zoo_faster_rcnn_with_the_frn_backbone_of_a_retinanet_checkpoint(tmp_path, capsys):
    retina = build_model(yacs_cfg(BASE))
    with torch.no_grad():
        for p in retina.parameters():
            p.normal_(0, 0.1)
    DetectionCheckpointer(retina, save_dir=str(tmp_path)).save("retinanet_frn")
    from frn_det.export import backbone as extract
    extract.main([str(tmp_path / "retinanet_frn.pth"), str(tmp_path / "backbone.pth")])
    assert "dropped head.bbox_pred.*, head.bbox_subnet.*, head.cls_score.*, head.cls_subnet.*" in capsys.readouterr().out
    assert all(k.startswith("backbone.") for k in torch.load(tmp_path / "backbone.pth")["model"])
    extract.main([str(tmp_path / "retinanet_frn.pth"), str(tmp_path / "bottom_up.pth"), "--bottom-up-only"])
    assert all(k.startswith("backbone.bottom_up.") for k in torch.load(tmp_path / "bottom_up.pth")["model"])

    cfg = yacs_cfg(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"),
                   "MODEL.BACKBONE.NAME", "build_resnet_frn_fpn_backbone", "MODEL.RESNETS.NORM", "FRN",
                   "MODEL.FPN.NORM", "FRN_NoTLU", "MODEL.WEIGHTS", str(tmp_path / "backbone.pth"),
                   "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.ROI_BOX_HEAD.FC_DIM", "64")
    model = build_model(cfg)
    assert sum(isinstance(m, FRN) for m in model.backbone.modules()) > 20
    records = _Records()
    logging.getLogger("fvcore.common.checkpoint").addHandler(records)
    try:
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    finally:
        logging.getLogger("fvcore.common.checkpoint").removeHandler(records)
    # DetectionCheckpointer reports what it skips: RetinaNet's P6/P7 convs; and what the checkpoint
    # lacks: the R-CNN's P2 convs and its heads
    missing, unused = records.text.split("The checkpoint state_dict contains keys that are not used by the model:")
    assert unused.split() == ["backbone.top_block.p6.{bias,", "weight}", "backbone.top_block.p7.{bias,", "weight}"]
    assert "not found in the checkpoint" in missing
    for key in ("backbone.fpn_lateral2.weight", "backbone.fpn_output2.weight", "proposal_generator.rpn_head",
                "roi_heads.box_head"):
        assert key in missing, key
    assert "bottom_up" not in missing
    for key, value in retina.backbone.state_dict().items():
        if not key.startswith("top_block."):
            assert torch.equal(model.backbone.state_dict()[key], value), key

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with EventStorage(0):
        losses = model(synthetic_batch())
    assert {"loss_rpn_cls", "loss_cls", "loss_box_reg"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def lazy_model_cfg(path):
    cfg = LazyConfig.load(path)
    LazyConfig.apply_overrides(cfg, ["model.backbone.bottom_up.resnet.stages.depth=50",
                                     "model.backbone.square_pad=0", "model.num_classes=80"])
    return cfg


def test_lazy_config_is_the_yaml_model_and_runs(tmp_path):
    cfg = lazy_model_cfg(os.path.join(LAZY, "retinanet_frn_R101_FPN.py"))
    lazy = instantiate(cfg.model)
    yaml_model = build_model(yacs_cfg(BASE, "MODEL.RESNETS.DEPTH", "50", "MODEL.FPN.SQUARE_PAD", "0", tiny=False))
    # the same modules (FRN-aware blocks, FRN heads), parameters and state names as the yaml version
    assert {k: v.shape for k, v in lazy.state_dict().items()} == {k: v.shape for k, v in yaml_model.state_dict().items()}
    assert [type(m).__name__ for m in lazy.modules()] == [type(m).__name__ for m in yaml_model.modules()]
    assert lazy.backbone._square_pad == 0 and cfg.model.backbone.bottom_up.resnet.stages.stride_in_1x1 is False
    lazy.load_state_dict(yaml_model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = [lazy.backbone(x)[f] for f in lazy.head_in_features]
        yaml_features = [yaml_model.backbone(x)[f] for f in yaml_model.head_in_features]
        torch.testing.assert_close(features, yaml_features)
        torch.testing.assert_close(lazy.head(features), yaml_model.head(yaml_features))

    lazy.train()
    with EventStorage(0):
        losses = lazy(synthetic_batch(1))
    assert set(losses) == {"loss_cls", "loss_box_reg"} and all(torch.isfinite(v) for v in losses.values())
    cfg.optimizer.params.model = lazy
    optimizer = instantiate(cfg.optimizer)
    decay = {p: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert all(decay[p] == 0.0 for m in lazy.modules() if isinstance(m, (FRN, TLU)) for p in m.parameters())
    assert decay[lazy.backbone.bottom_up.stem.conv1.weight] == 4e-4
    schedule = instantiate(cfg.lr_multiplier)
    assert schedule(0.0) == 0.0 and schedule(0.02) == pytest.approx(1.0, abs=1e-3) and schedule(1.0) < 1e-6


@pytest.mark.parametrize("imgs", [8, 4, 2])
def test_lazy_configs_follow_the_paper_rule(imgs):
    cfg = LazyConfig.load(os.path.join(LAZY, f"retinanet_frn_{imgs}img.py"))
    # Table 6 at base_lr 0.05: M = 8 * imgs, steps = 125000 * 64 / M, lr = 0.05 * M / 64
    batch, steps, lr = {8: (64, 125000, 0.05), 4: (32, 250000, 0.025), 2: (16, 500000, 0.0125)}[imgs]
    assert cfg.dataloader.train.total_batch_size == batch
    assert cfg.optimizer.lr == pytest.approx(lr) and cfg.train.max_iter == steps
    yaml = yacs_cfg(os.path.join(ROOT, "configs", f"retinanet_frn_{imgs}img.yaml"), tiny=False)
    assert cfg.train.checkpointer.period == yaml.SOLVER.CHECKPOINT_PERIOD
    assert cfg.lr_multiplier.warmup_length * steps == pytest.approx(yaml.SOLVER.WARMUP_ITERS)
    assert cfg.dataloader.train.dataset.names == "coco_2017_train"
    assert set(cfg) == {"model", "dataloader", "optimizer", "lr_multiplier", "train"}
