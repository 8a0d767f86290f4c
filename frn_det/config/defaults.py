import contextlib

from detectron2.config import CfgNode as CN


def add_frn_config(cfg):
    """Adds frn_det's keys to a detectron2 config (call before merge_from_file)."""
    cfg.MODEL.FRN = CN()
    # Fixed eps of eq. 1 (the paper's 1e-6), or learnable: eps = 1e-6 + |eps_l|, eps_l init 1e-4.
    cfg.MODEL.FRN.EPS = 1e-6
    cfg.MODEL.FRN.LEARNABLE_EPS = False
    # Pad every input to this square size (0: off); the paper trains at 1024x1024.
    cfg.MODEL.FPN.SQUARE_PAD = 0
    # SOLVER.WARMUP_METHOD also accepts "cosine" (the paper's cosine ramp-up, section 4.1).
    return cfg


def apply_frn_options(cfg):
    """Makes every FRN layer built through get_norm from now on use cfg.MODEL.FRN (also those of
    detectron2's own modules, e.g. an R-CNN box head with NORM "FRN")."""
    from frn_det.layers import set_frn_options

    set_frn_options(eps=cfg.MODEL.FRN.EPS, learnable_eps=cfg.MODEL.FRN.LEARNABLE_EPS)


def frn_options_of(cfg):
    """Context in which get_norm's FRN layers follow cfg.MODEL.FRN. frn_det's builders (FRN ResNet, FPN,
    RetinaNetFRN's head) build inside it, so the keys hold for them in any build_model(cfg); layers that
    detectron2's own builders make (e.g. an R-CNN box head with NORM "FRN") follow apply_frn_options."""
    from frn_det.layers import frn_options

    node = cfg.MODEL.get("FRN")
    return frn_options(node.EPS, node.LEARNABLE_EPS) if node is not None else contextlib.nullcontext()
