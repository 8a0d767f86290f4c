"""frn_det's configs, shaped like detectron2.model_zoo: names are paths relative to the repo's
`configs/`, e.g. "retinanet_frn_2img.yaml", "demo/retinanet_frn_R18_shapes.yaml",
"lazy/retinanet_frn_2img.py".

The configs ship as package data. As in detectron2, setup.py links the repo's `configs/` to
`frn_det/model_zoo/configs` at build time, so there is one copy; a checkout that was never built
reads the repo's `configs/` directly.
"""
from frn_det.config.files import config_file_argument, configs_dir, get_config_file, list_configs, resolve_config_file

__all__ = ["config_file_argument", "configs_dir", "get", "get_config", "get_config_file", "list_configs",
           "resolve_config_file"]


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
