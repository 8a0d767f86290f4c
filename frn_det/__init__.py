"""frn_det: Filter Response Normalization for detectron2.

Importing this package registers what it adds to detectron2: the "FRN" and "FRN_NoTLU" norm names
in get_norm, the "cosine" warmup method.
"""
__version__ = "0.1.0"  # setup.py reads it from here

import warnings

with warnings.catch_warnings():
    # detectron2's modules call torch.jit.script at import, which torch 2.14 deprecates
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
    from .config import add_frn_config
    from .layers import FRN, TLU, frn_reference, register_frn_norm
    from .layers.path_cpp import cpp_available as _cpp_available
    from .solver import register_cosine_warmup
    from . import modeling  # noqa: F401  (registers backbones and RetinaNetFRN)
    from . import engine  # noqa: F401  (CPU-capable create_ddp_model for DefaultTrainer)

register_frn_norm()
register_cosine_warmup()
_cpp_available()  # an install without the C++ kernel says so once, now
