"""A detectron2 config with frn_det's keys, from a file and command-line overrides, with errors that
name the key."""
import difflib
import re

from detectron2.config import CfgNode, get_cfg

from .defaults import add_frn_config


def _keys(node, prefix=""):
    for k, v in node.items():
        yield from _keys(v, f"{prefix}{k}.") if isinstance(v, CfgNode) else (f"{prefix}{k}",)


def merge_config(cfg, config_file, opts):
    """merge_from_file + merge_from_list. An unknown key or a value of the wrong type is one ValueError
    naming the key, where it was given, and the closest valid keys (yacs asserts, or names only the key).
    config_file None: the overrides only."""
    merges = ((config_file, lambda: cfg.merge_from_file(config_file)),
              ("the command line", lambda: cfg.merge_from_list(opts)))
    for source, merge in merges[config_file is None:]:  # no file: the overrides only
        try:
            merge()
        except (KeyError, ValueError, AssertionError) as e:
            message = e.args[0] if e.args else str(e)
            key = re.search(r"(?:key|for config key): (\S+)$", str(message))
            close = _close_keys(cfg, key.group(1)) if key else []
            hint = f" Did you mean {' or '.join(close)}?" if close and key.group(1) not in close else ""
            raise ValueError(f"Config error in {source}: {message}.{hint}") from e
    return cfg


def _close_keys(cfg, key):
    """Valid keys close to `key`: its siblings first (DEPHT -> DEPTH), else any key."""
    keys = list(_keys(cfg))
    parent, _, leaf = key.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in keys if k.rpartition(".")[0] == parent]
    close = [f"{parent}.{k}" if parent else k for k in difflib.get_close_matches(leaf, siblings, n=2, cutoff=0.7)]
    return close or difflib.get_close_matches(key, keys, n=2, cutoff=0.8)


NO_CUDA_WARNING = "MODEL.DEVICE is 'cuda' but CUDA is not available: running on the CPU"


def cpu_without_cuda(cfg):
    """MODEL.DEVICE 'cuda' becomes 'cpu' where CUDA is not available; True when it did (the caller
    warns with NO_CUDA_WARNING once its logging is set up)."""
    import torch

    if cfg.MODEL.DEVICE == "cuda" and not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
        return True
    return False


def build_cfg(config_file, opts=()):
    """get_cfg + add_frn_config + the file and command-line overrides (errors that name the key), with
    the embedded datasets registered. Not frozen: for tools that adjust it (export, batch study)."""
    from frn_det.data import register_default_datasets

    register_default_datasets()
    return merge_config(add_frn_config(get_cfg()), config_file, list(opts))


def _switched_to_frn(cfg, frn, keep_weights):
    """(cfg through to_frn with --frn NORM, or as given without, the notes saying what it changed)."""
    import logging

    from .to_frn import to_frn

    if not frn:
        return cfg, []
    cfg, changes = to_frn(cfg, frn, keep_weights=keep_weights, return_changes=True)
    return cfg, [(logging.INFO, f"--frn {frn} changed:\n  " + "\n  ".join(changes))] if changes else []


def command_cfg(config_file, opts=(), *, overrides=(), frn=None, keep_weights=False, cpu_fallback=True):
    """Every command's yaml config (train, predict, export, the study's tools; lazy_command_cfg for a
    LazyConfig .py): the --config-file (a path, or a name in frn_det's or detectron2's model zoo),
    switched to FRN by to_frn with --frn NORM, then the command line's KEY VALUE pairs (they win over
    to_frn), then the command's own settings (`overrides`, KEY VALUE ...); MODEL.DEVICE 'cuda' falls
    back to the CPU where CUDA is missing (unless cpu_fallback is False: a config read to be run
    elsewhere, e.g. submitted to SLURM). Not frozen.
    Returns (cfg, notes): [(logging level, message)] for the command to log once its logging is set up."""
    import logging

    from .files import config_file_argument

    cfg, notes = _switched_to_frn(build_cfg(config_file_argument(config_file)), frn, keep_weights)
    merge_config(cfg, None, [*opts, *overrides])
    if cpu_fallback and cpu_without_cuda(cfg):
        notes.append((logging.WARNING, NO_CUDA_WARNING))
    return cfg, notes


def lazy_command_cfg(config_file, opts=(), *, frn=None, keep_weights=False, cpu_fallback=True):
    """command_cfg for a LazyConfig (.py): LazyConfig.load of the --config-file (a path, or a name in
    frn_det's or detectron2's model zoo), to_frn with --frn NORM, then the command line's key=value
    overrides (they win over to_frn); train.device "cuda" falls back to the CPU where CUDA is missing.
    Returns (cfg, notes) as command_cfg."""
    import logging

    import torch
    from detectron2.config import LazyConfig

    from .files import config_file_argument

    cfg, notes = _switched_to_frn(LazyConfig.load(config_file_argument(config_file)), frn, keep_weights)
    cfg = LazyConfig.apply_overrides(cfg, list(opts))
    if cpu_fallback and cfg.train.get("device", "cuda") == "cuda" and not torch.cuda.is_available():
        cfg.train.device = "cpu"
        notes.append((logging.WARNING, NO_CUDA_WARNING.replace("MODEL.DEVICE", "train.device")))
    return cfg, notes
