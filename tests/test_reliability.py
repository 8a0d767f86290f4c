"""Reliability: bad input is one clear error that loses nothing, non-finite losses stop
training with the last checkpoint intact, bf16 mixed precision on the CPU, and resume after SIGKILL."""
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.engine import default_argument_parser
from detectron2.modeling import build_backbone, build_model

import frn_det
from coco_tree import ROOT, TINY, TINY_MODEL, make_coco_tree
from frn_det.data.checks import MalformedDatasetError, check_datasets, load_dataset, naming_malformed_datasets
from frn_det.engine import CPUAMPTrainer, Trainer, check_batch_split, setup_cfg
from frn_det.engine.checkpoint import AtomicCheckpointer, FiniteAtomicCheckpointer
from frn_det.solver import build_lr_scheduler

CONFIG = os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")
TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    return make_coco_tree(str(tmp_path_factory.mktemp("datasets")))


def register(name, root, split="train2017", json_file=None):
    """The tiny tree's split under a test-only name (in-process, DETECTRON2_DATASETS is read too early)."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    json_file = json_file or os.path.join(root, "coco", "annotations", f"instances_{split}.json")
    register_coco_instances(name, {}, str(json_file), os.path.join(root, "coco", split))
    return name


@pytest.fixture(scope="module")
def tiny_train(coco_root):
    return register("frn_reliability_train", coco_root)


def args_for(*opts, num_gpus=1):
    return default_argument_parser().parse_args(
        ["--config-file", CONFIG, "--num-gpus", str(num_gpus), *TINY, *opts]
    )


def tiny_cfg(tmp_path, train_name, *opts):
    return setup_cfg(args_for("DATASETS.TRAIN", f"('{train_name}',)", "DATASETS.TEST", "()",
                              "OUTPUT_DIR", str(tmp_path / "out"), *opts))


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["MODEL.RESNETS.NORM", "MODEL.FPN.NORM", "MODEL.RETINANET.NORM"])
def test_unknown_norm_in_a_config_lists_the_valid_names(key):
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list([*TINY_MODEL, "MODEL.DEVICE", "cpu", key, "FNR"])
    with pytest.raises(ValueError, match=r"Unknown norm 'FNR'\. Valid names: .*'FRN', 'FRN_NoTLU'"):
        build_model(cfg)


def test_config_key_typo_or_wrong_type_names_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"the command line: Non-existent key: SOLVER\.BASE_LRR\. "
                                         r"Did you mean SOLVER\.BASE_LR"):
        setup_cfg(args_for("SOLVER.BASE_LRR", "0.1"))
    with pytest.raises(ValueError, match=r"the command line: Type mismatch .* for config key: SOLVER\.MAX_ITER\.$"):
        setup_cfg(args_for("SOLVER.MAX_ITER", "many"))
    typo = tmp_path / "typo.yaml"
    typo.write_text(f'_BASE_: "{CONFIG}"\nMODEL:\n  RESNETS:\n    DEPHT: 50\n')
    args = default_argument_parser().parse_args(["--config-file", str(typo)])
    with pytest.raises(ValueError, match=rf"{typo}: Non-existent config key: MODEL\.RESNETS\.DEPHT\. "
                                         r"Did you mean MODEL\.RESNETS\.DEPTH\?"):
        setup_cfg(args)


def test_images_per_batch_that_do_not_split_across_processes(tmp_path):
    with pytest.raises(ValueError, match=r"SOLVER\.IMS_PER_BATCH \(3\) can't be split evenly across 2 "
                                         r"processes \(--num-gpus 2 x --num-machines 1\)"):
        setup_cfg(args_for("SOLVER.IMS_PER_BATCH", "3", "OUTPUT_DIR", str(tmp_path / "out"), num_gpus=2))
    assert not (tmp_path / "out").exists()  # stopped before anything was written
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_list(["SOLVER.IMS_PER_BATCH", "16", "SOLVER.REFERENCE_WORLD_SIZE", "3"])
    with pytest.raises(ValueError, match=r"SOLVER\.IMS_PER_BATCH \(16\) .* SOLVER\.REFERENCE_WORLD_SIZE \(3\)"):
        check_batch_split(cfg, 1)
    cfg.SOLVER.REFERENCE_WORLD_SIZE = 8  # auto_scale_workers keeps 2 per process on any count
    check_batch_split(cfg, 3)
    cfg.SOLVER.REFERENCE_WORLD_SIZE = 0
    check_batch_split(cfg, 4, 2)
    with pytest.raises(ValueError, match="across 6 processes"):
        check_batch_split(cfg, 3, 2)


def test_missing_user_dataset_names_its_paths(tmp_path):
    json_file = tmp_path / "ann.json"
    name = register("frn_missing", str(tmp_path), json_file=json_file)
    with pytest.raises(FileNotFoundError, match=rf"Dataset 'frn_missing' not found: missing {re.escape(str(json_file))}") as e:
        check_datasets([name])
    assert "DETECTRON2_DATASETS" not in str(e.value)  # the COCO layout hint is for detectron2's COCO names only


def _write_json(path, coco):
    path.write_text(json.dumps(coco))
    return path


@pytest.mark.parametrize("damage, message", [
    ("truncate", r"does not end with '\}' \(truncated"),
    ("list", r"does not start with '\{'"),
    ("empty", "the file is empty"),
])
def test_malformed_json_is_found_before_training(coco_root, tmp_path, damage, message):
    good = os.path.join(coco_root, "coco", "annotations", "instances_train2017.json")
    text = open(good).read()
    bad = tmp_path / "instances.json"
    bad.write_text({"truncate": text[: len(text) // 2], "list": "[" + text + "]", "empty": ""}[damage])
    name = register("frn_malformed", coco_root, json_file=bad)
    with pytest.raises(MalformedDatasetError, match=rf"Dataset 'frn_malformed': {re.escape(str(bad))} .*{message}"):
        check_datasets([name])


@pytest.mark.parametrize("damage, message", [
    (lambda c: c["annotations"][1].pop("bbox"), r"an annotation of image .*000000000001\.jpg has no 'bbox'"),
    (lambda c: c["images"][0].pop("file_name"), r"KeyError: 'file_name'"),
    (lambda c: c.pop("images"), "it lists no images"),
    (lambda c: c["annotations"][0].update(category_id=999), "category_id=999"),
])
def test_malformed_annotations_name_the_file_and_the_problem(coco_root, tmp_path, damage, message):
    coco = json.load(open(os.path.join(coco_root, "coco", "annotations", "instances_train2017.json")))
    damage(coco)
    bad = _write_json(tmp_path / "instances.json", coco)
    name = register("frn_malformed", coco_root, json_file=bad)
    check_datasets([name])  # a well-formed json object: the content is checked when loaded
    loader = DatasetCatalog[name]
    with pytest.raises(MalformedDatasetError, match=rf"{re.escape(str(bad))} is not a valid COCO annotation file: .*{message}"):
        load_dataset(name)
    assert DatasetCatalog[name] is loader  # the catalog entry is detectron2's, as registered


def test_a_failed_load_in_detectron2s_loader_names_the_dataset(coco_root, tmp_path):
    coco = json.load(open(os.path.join(coco_root, "coco", "annotations", "instances_train2017.json")))
    coco["images"][0].pop("file_name")
    bad = _write_json(tmp_path / "instances.json", coco)
    names = [register("frn_reliability_train", coco_root), register("frn_malformed", coco_root, json_file=bad)]
    with pytest.raises(MalformedDatasetError, match=rf"Dataset 'frn_malformed': {re.escape(str(bad))} .*KeyError"):
        with naming_malformed_datasets(names):
            [DatasetCatalog.get(n) for n in names]


def test_good_dataset_still_loads(tiny_train):
    check_datasets([tiny_train])
    check_datasets([tiny_train])
    assert len(load_dataset(tiny_train)) == 6 and len(DatasetCatalog.get(tiny_train)) == 6


# --- non-finite losses and checkpoints --------------------------------------------------------------


def test_non_finite_loss_names_loss_and_iteration_and_keeps_last_checkpoint(tiny_train, tmp_path):
    cfg = tiny_cfg(tmp_path, tiny_train, "SOLVER.MAX_ITER", "6")
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    forward = trainer.model.forward

    def nan_loss_cls_at_iteration_3(batched_inputs):
        losses = forward(batched_inputs)
        if trainer.iter == 3:
            losses["loss_cls"] = losses["loss_cls"] * float("nan")
        return losses

    trainer.model.forward = nan_loss_cls_at_iteration_3
    with pytest.raises(FloatingPointError, match=r"Non-finite loss at iteration 3: loss_cls=nan \(all losses"):
        trainer.train()
    out = cfg.OUTPUT_DIR
    assert open(os.path.join(out, "last_checkpoint")).read() == "model_0000001.pth"
    assert not os.path.exists(os.path.join(out, "model_final.pth"))
    model = build_model(cfg)
    checkpoint = DetectionCheckpointer(model, save_dir=out).resume_or_load("", resume=True)
    assert checkpoint["iteration"] == 1
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())


def test_non_finite_weights_are_never_saved(tmp_path):
    model = torch.nn.Linear(3, 2)
    checkpointer = FiniteAtomicCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000001")
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match="'model_0000003': weight is not finite"):
        checkpointer.save("model_0000003")
    assert checkpointer.get_checkpoint_file().endswith("model_0000001.pth")
    assert not (tmp_path / "model_0000003.pth").exists()


def test_a_save_that_fails_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    AtomicCheckpointer(model, str(tmp_path)).save("model_0000001")
    saved = model.weight.detach().clone()

    def torch_save_dies_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", torch_save_dies_midway)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError, match="No space left"):
        AtomicCheckpointer(model, str(tmp_path)).save("model_0000003")
    monkeypatch.undo()
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert not (tmp_path / "model_0000003.pth").exists()
    fresh = torch.nn.Linear(3, 2)
    DetectionCheckpointer(fresh, save_dir=str(tmp_path)).resume_or_load("", resume=True)
    assert torch.equal(fresh.weight, saved)


# --- mixed precision ---------------------------------------------------------------------------------


# PyTorch 2.14's CPU bf16 conv gets the weight gradient of a stride-2 3x3 conv on a 1x1 map wrong
# (random, sometimes non-finite values in the off-centre taps). RetinaNet's P7 conv sees a 1x1 map for
# images under 128 px, so the bf16 tests use 128 px.
AMP_SIZE = ["INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "128"]


def test_cpu_amp_trains_under_bf16_autocast(tiny_train, tmp_path):
    cfg = tiny_cfg(tmp_path, tiny_train, "SOLVER.AMP.ENABLED", "True", "SOLVER.MAX_ITER", "3",
                   "SOLVER.CHECKPOINT_PERIOD", "100", *AMP_SIZE)
    trainer = Trainer(cfg)
    assert isinstance(trainer._trainer, CPUAMPTrainer)
    head_dtypes = set()
    trainer.model.head.cls_score.register_forward_hook(lambda m, i, o: head_dtypes.add(o.dtype))
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert head_dtypes == {torch.bfloat16}
    losses = [v for v, _ in trainer.storage.history("total_loss").values()]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in trainer.model.parameters())


def test_frn_backbone_with_large_activations_under_bf16_autocast():
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_file(os.path.join(ROOT, "configs", "Base-RetinaNet-FRN.yaml"))
    cfg.merge_from_list([*TINY_MODEL, "MODEL.DEVICE", "cpu"])
    backbone = build_backbone(cfg).train()
    x = torch.randn(2, 3, 128, 128) * 1e4  # conv outputs ~1e5: x^2 would overflow fp16
    x.requires_grad_(True)
    ref = backbone(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = backbone(x)
    for name in ref:
        assert out[name].dtype == torch.bfloat16 and torch.isfinite(out[name]).all(), name
        # bf16 keeps ~3 significant digits; FRN renormalizes every layer, so errors do not grow
        err = (out[name].float() - ref[name]).norm() / ref[name].norm()
        assert err < 0.05, (name, err)
    sum(v.float().mean() for v in out.values()).backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in backbone.parameters() if p.grad is not None)


# --- resume after SIGKILL ----------------------------------------------------------------------------


def scheduled_lr(opts, iteration):
    """The lr an uninterrupted run uses at `iteration`, from the same config and scheduler."""
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(opts)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    scheduler = build_lr_scheduler(cfg, optimizer)
    for _ in range(iteration):
        optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]


def test_sigkill_then_resume_continues_at_the_same_iteration_and_lr(coco_root, tmp_path):
    out = tmp_path / "out"
    opts = [*TINY, "SOLVER.MAX_ITER", "8", "SOLVER.WARMUP_ITERS", "4"]
    cmd = [sys.executable, TRAIN_NET, "--config-file", CONFIG]
    opts_out = [*opts, "DATASETS.TEST", "()", "OUTPUT_DIR", str(out)]
    env = dict(os.environ, DETECTRON2_DATASETS=str(coco_root))
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen([*cmd, *opts_out], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while not (out / "last_checkpoint").exists():
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    last = (out / "last_checkpoint").read_text()
    resume_at = torch.load(out / last, weights_only=False)["iteration"] + 1
    assert resume_at < 8 and not (out / "model_final.pth").exists()

    proc = subprocess.run([*cmd, "--resume", *opts_out], env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert f"Starting training from iteration {resume_at}" in log
    lr = float(re.search(rf"Resumed at iteration {resume_at} with lr (\S+)", log).group(1))
    assert lr == pytest.approx(scheduled_lr(opts, resume_at), rel=1e-6)
    last_metrics = [json.loads(line) for line in open(out / "metrics.json")][-1]
    assert last_metrics["iteration"] == 7
    assert last_metrics["lr"] == pytest.approx(scheduled_lr(opts, 7), rel=1e-6)
    assert (out / "model_final.pth").exists()


def test_a_save_removes_the_temporaries_of_writers_that_are_gone(tmp_path):
    # a run killed while saving (SLURM requeues it) leaves NAME.pth.tmp.PID; a live writer's is kept
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, live = tmp_path / f"model_0000021.pth.tmp.{int(gone.stdout)}", tmp_path / f"model_0000023.pth.tmp.{os.getppid()}"
    for path in (stale, live):
        path.write_bytes(b"half a checkpoint")
    AtomicCheckpointer(torch.nn.Linear(2, 2), save_dir=str(tmp_path)).save("model_0000025")
    assert not stale.exists() and live.exists() and (tmp_path / "model_0000025.pth").exists()
