"""detectron2's FCOS head without a ReLU after FRN+TLU."""
from detectron2.modeling.meta_arch.fcos import FCOSHead

from ..relu_after_tlu import drop_relu_after_tlu


class FCOSHeadFRN(FCOSHead):
    """detectron2's FCOSHead (a LazyConfig's `model.head`; FCOS has no yacs config): with a norm whose
    layer ends in TLU ("FRN", "GFRN", "GN_TLU") the ReLU after each norm of the towers becomes Identity
    (that TLU is the activation); with any other norm this is detectron2's head. Module indices and
    state names are unchanged."""

    def __init__(self, *, input_shape, conv_dims, **kwargs):
        super().__init__(input_shape=input_shape, conv_dims=conv_dims, **kwargs)
        drop_relu_after_tlu(self)
