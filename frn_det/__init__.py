"""frn_det: Filter Response Normalization for detectron2.

Importing this package registers what it adds to detectron2's registries (the FRN backbones,
RetinaNetFRN, the FRN-aware R-CNN heads) and catalogs (the embedded shapes datasets' names, as importing detectron2.data registers
its builtin datasets; nothing is generated until a dataset is loaded, and no name detectron2 already
has is replaced), and makes frn_det's norm names ("FRN", "FRN_NoTLU" and Table 3's ablations,
frn_det.layers.FRN_NORMS) resolvable through get_norm, the one thing it changes in detectron2. The
rest (cosine warmup, CPU DDP, checks) comes through frn_det's own Trainer (frn_det.engine.Trainer) and
functions; frn_det.to_frn(cfg) switches a detectron2 config (yacs or LazyConfig) to FRN.
"""
__version__ = "0.1.0"  # setup.py reads it from here

import warnings

with warnings.catch_warnings():
    # detectron2's modules call torch.jit.script at import, which torch 2.14 deprecates
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
    from .config import add_frn_config, to_frn
    from .layers import FRN, TLU, frn_reference, register_frn_norm
    from .layers.path_cpp import cpp_available as _cpp_available
    from . import modeling  # noqa: F401  (registers the backbones, RetinaNetFRN and the R-CNN heads)
    from .data.register import register_default_datasets

register_frn_norm()
# under $FRN_DET_DATASETS (else $DETECTRON2_DATASETS/frn_shapes), read now, as detectron2 reads its root
register_default_datasets()
_cpp_available()  # an install without the C++ kernel says so once, now
