from .frn import FRN, TLU, frn_reference, frn_function
from .norm import FRN_NORMS, frn_options, norm_has_tlu, register_frn_norm, set_frn_options, valid_norm_names
from .frn_impl import active_impl
