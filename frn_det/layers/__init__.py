from .frn import FRN, TLU, frn_reference, frn_function
from .norm import (FRN_NORMS, FRNNorm, frn_norm, frn_options, norm_has_tlu, norm_without_tlu, register_frn_norm,
                   valid_norm_names)
from .frn_impl import active_impl
