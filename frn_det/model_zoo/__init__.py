"""frn_det's configs, shaped like detectron2.model_zoo: names are paths relative to the repo's
`configs/`, e.g. "retinanet_frn_2img.yaml", "demo/retinanet_frn_R18_shapes.yaml",
"lazy/retinanet_frn_2img.py".

The configs ship as package data. As in detectron2, setup.py links the repo's `configs/` to
`frn_det/model_zoo/configs` at build time, so there is one copy; a checkout that was never built
reads the repo's `configs/` directly.
"""
import difflib
import os
from pathlib import Path

__all__ = ["get", "get_config", "get_config_file", "list_configs", "resolve_config_file"]

_PACKAGED = Path(__file__).resolve().parent / "configs"
_CHECKOUT = Path(__file__).resolve().parents[2] / "configs"
# a checkout holds setup.py beside frn_det/ (an installed frn_det's parent is site-packages, whose
# configs/ would be another package's)
_IS_CHECKOUT = (_CHECKOUT.parent / "setup.py").is_file()


def configs_dir():
    """The folder the configs are read from: the package's, else the checkout's."""
    for folder in (_PACKAGED, _CHECKOUT) if _IS_CHECKOUT else (_PACKAGED,):
        if folder.is_dir():
            return folder
    raise RuntimeError(f"frn_det's configs are missing: neither {_PACKAGED} nor {_CHECKOUT} exists; "
                       "reinstall frn_det")


def list_configs():
    """Sorted names of every yaml and lazy (.py) config."""
    root = configs_dir()
    return sorted(str(p.relative_to(root)) for ext in ("yaml", "py") for p in root.rglob(f"*.{ext}"))


def get_config_file(config_path):
    """The absolute path of a config, e.g. get_config_file("retinanet_frn_2img.yaml"). Its `_BASE_` and
    relative imports resolve next to it."""
    path = configs_dir() / config_path
    if not path.is_file() or path.suffix not in (".yaml", ".py"):
        names = list_configs()
        close = difflib.get_close_matches(str(config_path), names, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise RuntimeError(f"{config_path!r} is not in frn_det's model zoo.{hint} Valid names: {', '.join(names)}")
    return str(path)


def resolve_config_file(path):
    """`path` itself when it exists, else the model-zoo config of that name, so that commands take
    either; a RuntimeError naming the valid names when it is neither."""
    if not path or os.path.exists(path):
        return path
    return get_config_file(path)


def config_file_argument(path):
    """A command's --config-file: a file as given, else frn_det's model-zoo config of that name, else
    detectron2's (to train detectron2's own configs with --frn); the error is the command's exit message."""
    try:
        return resolve_config_file(path)
    except RuntimeError as e:
        from detectron2.model_zoo import get_config_file

        try:
            return get_config_file(path)
        except RuntimeError:
            raise SystemExit(f"--config-file {path}: no such file, not in detectron2's model zoo, and {e}") from None


def get_config(config_path):
    """A yaml config as a CfgNode (detectron2's defaults + frn_det's keys, the embedded datasets
    registered), or a lazy config as an omegaconf DictConfig. No trained weights are published, so
    unlike detectron2's there is no `trained` argument."""
    cfg_file = get_config_file(config_path)
    if cfg_file.endswith(".py"):
        from detectron2.config import LazyConfig

        return LazyConfig.load(cfg_file)
    from frn_det.config import build_cfg

    return build_cfg(cfg_file)


def get(config_path, device=None):
    """The config's model, untrained, in training mode; on the CPU when CUDA is not available."""
    import torch
    from detectron2.config import CfgNode, instantiate

    from frn_det.modeling import build_model

    cfg = get_config(config_path)
    if device is None and not torch.cuda.is_available():
        device = "cpu"
    if isinstance(cfg, CfgNode):
        if device is not None:
            cfg.MODEL.DEVICE = device
        return build_model(cfg)
    from frn_det.modeling.relu_after_tlu import check_no_relu_after_tlu

    model = check_no_relu_after_tlu(instantiate(cfg.model), config="lazy")
    return model.to(device) if device is not None else model
