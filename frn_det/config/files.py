"""Where a command's config file comes from: a path, or a name in frn_det's model zoo (its configs/,
package data at frn_det/model_zoo/configs), else in detectron2's. frn_det.model_zoo serves these names
as detectron2.model_zoo does."""
import difflib
import os
from pathlib import Path

_PACKAGED = Path(__file__).resolve().parents[1] / "model_zoo" / "configs"
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


def config_file_argument(path, option="--config-file"):
    """A command's --config-file: a file as given, else frn_det's model-zoo config of that name, else
    detectron2's (to train detectron2's own configs with --frn); the error is the command's exit message."""
    try:
        return resolve_config_file(path)
    except RuntimeError as e:
        from detectron2.model_zoo import get_config_file

        try:
            return get_config_file(path)
        except RuntimeError:
            raise SystemExit(f"{option} {path}: no such file, not in detectron2's model zoo, and {e}") from None
