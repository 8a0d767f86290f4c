from detectron2.config import CfgNode as CN


def add_frn_config(cfg):
    """Adds frn_det's keys to a detectron2 config (call before merge_from_file)."""
    converted = cfg.MODEL.get("FRN", {}).get("META_ARCHITECTURE", "")  # to_frn's, when called after it
    cfg.MODEL.FRN = CN()
    # Fixed eps of eq. 1 (the paper's 1e-6), or learnable: eps = 1e-6 + |eps_l|, eps_l init 1e-4; for the
    # FRN and GFRN norm names (GN_TLU keeps GroupNorm's eps).
    cfg.MODEL.FRN.EPS = 1e-6
    cfg.MODEL.FRN.LEARNABLE_EPS = False
    # The FRN path: auto (the fastest correct one, timed at the start of training; frn_det.engine.frn_path),
    # or cpp, triton, compile, python, reference. The environment's FRN_DET_IMPL overrides it.
    cfg.MODEL.FRN.IMPL = "auto"
    # The architecture that MODEL.META_ARCHITECTURE "FRNChecked" builds and checks (no ReLU after TLU);
    # frn_det.to_frn sets both, so that detectron2's own build_model checks the model. Unused otherwise.
    cfg.MODEL.FRN.META_ARCHITECTURE = converted
    # Pad every input to this square size (0: off); the paper trains at 1024x1024.
    cfg.MODEL.FPN.SQUARE_PAD = 0
    # SOLVER.WARMUP_METHOD also accepts "cosine" (the paper's cosine ramp-up, section 4.1).
    # SOLVER.WEIGHT_DECAY_NORM also applies to gamma, beta and tau (and eps_l) of FRN, GFRN, GN+TLU and TLU.

    # Recipe options beyond the paper (off in the paper configs; measured in benchmarks/):
    # subtract each image's per-channel mean over its own pixels (not the padding) after
    # PIXEL_MEAN/PIXEL_STD, in training, evaluation and export (RetinaNetFRN). FRN has no mean
    # subtraction, so without it an image's brightness and colour cast pass through the stem.
    cfg.MODEL.CENTER_PIXELS_PER_IMAGE = False
    # Initialise the last norm's gamma of each residual branch to 0 (each block starts as identity).
    cfg.MODEL.RESNETS.ZERO_INIT_RESIDUAL = False
    # RetinaNet head: one norm (gamma, beta, tau, statistics) per FPN level instead of one shared by
    # all levels (convs stay shared), as in the TPU RetinaNet head the paper used.
    cfg.MODEL.RETINANET.NORM_PER_LEVEL = False

    # FRN health monitor (frn_det.engine.FRNMonitor): every PERIOD iterations, statistics of the
    # norm layers per ResNet stage, FPN and head go to EventStorage (metrics.json, TensorBoard).
    cfg.FRN_MONITOR = CN()
    cfg.FRN_MONITOR.ENABLED = False
    cfg.FRN_MONITOR.PERIOD = 20
    return cfg

