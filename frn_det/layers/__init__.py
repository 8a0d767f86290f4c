"""FRN layers. formula.py holds the paper's formula (frn_reference, tlu_reference) and the helpers every path shares;
path_cpp, path_torch and path_triton are the faster paths, side by side; dispatch chooses one per
input; frn.py holds the FRN and TLU modules; norm.py makes "FRN" a detectron2 norm name."""
from .formula import frn_reference, tlu_reference
from .dispatch import active_impl, force_impl, frn_function
from .frn import FRN, TLU
from .norm import (FRN_NORMS, PAPER_OPTIONS, FRNNorm, frn_options, frn_options_scope, norm_has_tlu, norm_without_tlu,
                   register_frn_norm, scoped_frn_options, valid_norm_names)
