"""frn_det as a user installs it into their detectron2 environment. Builds the wheel from the
checkout's files (as a fresh clone has them), installs it into a folder of its own, and from a working
directory outside the repo gets configs through frn_det.model_zoo, trains and evaluates the demo config
on the embedded data, loads the FRN backbone into a model-zoo Faster R-CNN, and runs the batch-size
study's installed command."""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from coco_tree import ROOT, TINY_MODEL, make_coco_tree
from frn_det.layers.path_cpp import cpp_available


def run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{(proc.stdout + proc.stderr)[-5000:]}"
    return proc.stdout + proc.stderr


def fresh_tree(dst):
    """The checkout's tracked and new files, as a fresh clone has them: no build/, .so or config link."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        if os.path.isfile(os.path.join(ROOT, name)):  # not deleted in the working tree
            os.makedirs(dst / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), dst / name)
    return dst


def install(wheel, site):
    """Into a folder of its own, which the test puts on PYTHONPATH."""
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)], cwd=site.parent)
    return site


def installed_env(site):
    """The environment whose frn_det is the one installed in site, with no dataset root set."""
    env = {k: v for k, v in os.environ.items() if k not in ("FRN_DET_DATASETS", "DETECTRON2_DATASETS")}
    # before the editable install of the checkout: its finder comes after sys.path's folders
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OMP_NUM_THREADS"] = "1"  # on a busy CPU, 2 spinning threads made evaluation 10x slower
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built, as the README says, against the test environment's torch."""
    tmp = tmp_path_factory.mktemp("build")
    src = fresh_tree(tmp / "src")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
         str(src)], cwd=tmp)
    (path,) = (tmp / "dist").glob("frn_det-*.whl")
    return path


def test_wheel_holds_the_package_and_one_copy_of_the_configs(wheel):
    z = zipfile.ZipFile(wheel)
    names = z.namelist()
    (dist_info,) = {n.split("/")[0] for n in names} - {"frn_det"}  # no tests/, tools/ or configs/ at the top
    assert dist_info.endswith(".dist-info")
    prefix = "frn_det/model_zoo/configs/"
    packaged = sorted(n[len(prefix):] for n in names if n.startswith(prefix))
    committed = sorted(os.path.relpath(os.path.join(d, f), os.path.join(ROOT, "configs"))
                       for d, _, files in os.walk(os.path.join(ROOT, "configs")) for f in files
                       if f.endswith((".yaml", ".py")))
    assert packaged == committed
    for name in packaged:
        assert z.read(prefix + name) == open(os.path.join(ROOT, "configs", name), "rb").read()
    # the kernel is in the wheel wherever this environment could build it
    assert any("_frn_cpu" in n for n in names) == cpp_available()
    entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
    assert "frn-det-train = frn_det.train_net:cli" in entry_points and "frn-det-predict = frn_det.predict:cli" in entry_points
    assert "frn-det-study = frn_det.study.batch:cli" in entry_points


# Runs in a fresh interpreter whose frn_det is the installed one; cwd is outside the repo.
USER_SCRIPT = r"""
import sys
import frn_det
from frn_det import model_zoo

site, repo = sys.argv[1], sys.argv[2]
assert frn_det.__file__.startswith(site) and not frn_det.__file__.startswith(repo), frn_det.__file__
assert model_zoo.get_config_file("retinanet_frn_2img.yaml").startswith(site)
names = model_zoo.list_configs()
assert {"retinanet_frn_2img.yaml", "demo/retinanet_frn_R18_shapes.yaml", "lazy/retinanet_frn_2img.py"} <= set(names)
try:
    model_zoo.get_config_file("retinanet_frn_3img.yaml")
    raise AssertionError("an unknown name must raise")
except RuntimeError as e:
    assert "retinanet_frn_2img.yaml" in str(e) and "Valid names" in str(e), e

cfg = model_zoo.get_config("retinanet_frn_2img.yaml")  # _BASE_ resolves inside the package
assert cfg.MODEL.META_ARCHITECTURE == "RetinaNetFRN" and cfg.MODEL.RESNETS.NORM == "FRN"
assert cfg.SOLVER.IMS_PER_BATCH == 16 and cfg.MODEL.RESNETS.DEPTH == 101
lazy = model_zoo.get_config("lazy/retinanet_frn_2img.py")  # relative imports resolve inside the package
assert lazy.dataloader.train.total_batch_size == 16 and lazy.model.backbone.bottom_up.resnet.stages.depth == 101
demo = model_zoo.get_config("demo/retinanet_frn_R18_shapes.yaml")
assert demo.MODEL.RESNETS.DEPTH == 18 and demo.DATASETS.TRAIN == ("shapes_uniform_train",)

model = model_zoo.get("retinanet_frn_2img.yaml", device="cpu")
assert type(model).__name__ == "RetinaNetFRN"
assert sum(isinstance(m, frn_det.FRN) for m in model.modules()) > 100
print("KERNEL", frn_det.layers.active_impl())
"""

# The FRN backbone of the run's RetinaNet in detectron2's model-zoo Faster R-CNN (README, "Use FRN in
# your detectron2 project"), with the demo's ResNet-18 and 128-channel FPN.
RCNN_SCRIPT = r"""
import sys
import torch
from detectron2 import model_zoo
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
import frn_det

cfg = frn_det.to_frn(model_zoo.get_config("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
cfg.merge_from_list(["MODEL.WEIGHTS", sys.argv[1], "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
                     "MODEL.RESNETS.STRIDE_IN_1X1", "False", "MODEL.FPN.OUT_CHANNELS", "128", "MODEL.DEVICE", "cpu",
                     "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128"])
model = build_model(cfg)
DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
trained = torch.load(sys.argv[1], map_location="cpu", weights_only=False)["model"]
state = model.state_dict()
# all of the RetinaNet's ResNet and FPN but its P6/P7 convs, which an R-CNN has not
loaded = [k for k in trained if k.startswith("backbone.") and not k.startswith("backbone.top_block.")]
assert "backbone.bottom_up.res5.1.tlu.tau" in loaded and "backbone.fpn_output5.weight" in loaded
assert all(torch.equal(state[k], trained[k]) for k in loaded)
model.eval()
with torch.no_grad():
    (out,) = model([{"image": torch.randint(0, 256, (3, 128, 128)).float()}])
assert out["instances"].has("pred_boxes")
print("RCNN OK", len(loaded))
"""


def test_installed_package_outside_the_repo(wheel, tmp_path):
    site = install(wheel, tmp_path / "site")
    work = tmp_path / "project"  # the user's project: no configs/, no frn_det/ next to it
    work.mkdir()
    env = installed_env(site)
    py = [sys.executable, "-c"]
    out = run([*py, USER_SCRIPT, str(site), ROOT], cwd=work, env=env)
    assert ("KERNEL cpp" in out) == cpp_available(), out[-2000:]

    # 2 iterations of the demo config, by name, and its evaluation; the embedded data goes where
    # detectron2's convention puts it, datasets/ in the working directory
    log = run([sys.executable, "-m", "frn_det.train_net", "--config-file", "demo/retinanet_frn_R18_shapes.yaml",
               "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "4", "DATALOADER.NUM_WORKERS", "0",
               "OUTPUT_DIR", "output/demo"], cwd=work, env=env)
    assert (work / "datasets" / "frn_shapes").is_dir()
    headline = json.load(open(work / "output" / "demo" / "results.json"))["headline"]
    assert set(headline["shapes_uniform_val"]) == {"AP", "AP50", "AP75"}, headline
    assert f"config_file='{site}" in log  # the name resolved to the installed package's config

    out = run([*py, RCNN_SCRIPT, str(work / "output" / "demo" / "model_final.pth")], cwd=work, env=env)
    assert "RCNN OK" in out


def test_installed_study_command_outside_the_repo(wheel, tmp_path):
    """The study's console script from the wheel, in a folder with no checkout: a config by model-zoo
    name, runs through the installed trainer, output/ in the working directory. 1 method, 1 column,
    2 iterations of a tiny model on a tiny COCO tree."""
    site = install(wheel, tmp_path / "site")
    work = tmp_path / "project"
    work.mkdir()
    env = {**installed_env(site), "DETECTRON2_DATASETS": str(make_coco_tree(tmp_path / "datasets"))}
    study = site / "bin" / "frn-det-study"
    run([str(study), "--config", "retinanet_frn_2img.yaml", "--methods", "frn", "--imgs", "2", "--extra-seeds", "--device", "cpu",
         *TINY_MODEL, "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "2", "SOLVER.WARMUP_ITERS", "1",
         "SOLVER.CHECKPOINT_PERIOD", "2"], cwd=work, env=env)
    out = work / "output" / "batch_study"
    summary = json.load(open(out / "results.json"))
    (record,) = summary["runs"]
    assert record["name"] == "frn_2img_seed0" and "failed" not in record["result"], record
    assert set(record["result"]["coco_2017_val"]) == {"AP", "AP50", "AP75"}, record
    # a config of the installed package is named as it was given, not by a path into site-packages
    assert summary["config"] == "retinanet_frn_2img.yaml"
    assert summary["command"][:3] == ["python", "-m", "frn_det.study.batch"]
    last = [json.loads(x) for x in open(out / "frn_2img_seed0" / "metrics.json") if '"total_loss"' in x][-1]
    assert last["iteration"] == 1
    log = (out / "frn_2img_seed0" / "study.log").read_text()
    # the installed trainer with the installed config; nothing of the checkout's
    assert f"config_file='{site}" in log
    assert os.path.join(ROOT, "frn_det") not in log and os.path.join(ROOT, "configs") not in log
    assert "| FRN |" in (out / "table.md").read_text() and os.path.getsize(out / "plot.png") > 1000


def test_plain_pip_install_gives_the_pytorch_path_and_says_so(tmp_path):
    """`pip install .` builds in an isolated environment without torch: no kernel, a warning at import."""
    src = fresh_tree(tmp_path / "src")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "setuptools" in proc.stderr and "satisfies the requirement" in proc.stderr:
        pytest.skip("no index to fetch setuptools into pip's isolated build environment")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = (tmp_path / "dist").glob("frn_det-*.whl")
    assert whl.name.endswith("-py3-none-any.whl")
    assert not any("_frn_cpu" in n for n in zipfile.ZipFile(whl).namelist())
    env = dict(os.environ, PYTHONPATH=str(install(whl, tmp_path / "site")), OMP_NUM_THREADS="1")
    out = run([sys.executable, "-c", "import frn_det, torch; frn_det.FRN(4)(torch.randn(2, 4, 3, 3)); "
               "print('IMPL', frn_det.layers.active_impl())"], cwd=tmp_path, env=env)
    assert out.count("C++ FRN kernel unavailable") == 1 and "--no-build-isolation" in out and "IMPL python" in out, out


def test_dataset_roots_follow_detectron2s_convention(monkeypatch):
    from frn_det.data import default_dataset_root

    monkeypatch.delenv("FRN_DET_DATASETS", raising=False)
    monkeypatch.delenv("DETECTRON2_DATASETS", raising=False)
    assert default_dataset_root() == os.path.join("datasets", "frn_shapes")  # relative to the working directory
    monkeypatch.setenv("DETECTRON2_DATASETS", "/data")
    assert default_dataset_root() == "/data/frn_shapes"
    monkeypatch.setenv("FRN_DET_DATASETS", "/shapes")
    assert default_dataset_root() == "/shapes"
