"""FRN layers. formula.py holds the paper's formula (frn_reference, tlu_reference) and the helpers every path shares;
path_cpp, path_torch and path_triton are the faster paths, side by side; dispatch chooses one per
input; frn.py holds the FRN and TLU modules; group_norms.py the group norms of Table 3's ablation
(GFRN, GroupNormTLU); norm.py makes "FRN" and the others detectron2 norm names."""
from .formula import frn_add_tlu_reference, frn_reference, gfrn_reference, tlu_reference
from .dispatch import active_impl, force_impl, frn_add_tlu_function, frn_function
from .frn import FRN, TLU
from .group_norms import GFRN, GroupNormTLU
from .norm import (FRN_NORMS, PAPER_OPTIONS, FRNNorm, NormSpec, frn_layer_types, frn_options_scope, name_without_tlu,
                   norm_has_tlu, norm_layer_types, norm_without_tlu, register_frn_norm, tlu_layer_types, valid_norm_names)
