"""The model builder every frn_det entry point uses: detectron2's build_model, inside the scope in
which get_norm gives every FRN layer cfg.MODEL.FRN's options, refusing a model with a ReLU after TLU."""
from detectron2.modeling import build_model as detectron2_build_model

from frn_det.layers import frn_options_scope

from .frn_options import frn_options_of
from .relu_after_tlu import check_no_relu_after_tlu


def build_model(cfg):
    """detectron2's build_model(cfg), with MODEL.FRN's options on every FRN layer that any builder
    (frn_det's, detectron2's or a user's registered one) makes through get_norm. A ReLU applied
    directly to a TLU's output anywhere in the model is a ValueError naming the module and its fix."""
    with frn_options_scope(*frn_options_of(cfg)):
        model = detectron2_build_model(cfg)
    return check_no_relu_after_tlu(model)


def build_lazy_model(model_class, **kwargs):
    """model_class(**kwargs), refused (in LazyConfig's words) when a ReLU is applied directly to a TLU's
    output: the top node of a LazyConfig model that frn_det.to_frn converted (`_target_` this function,
    `model_class` the model's own target, every other argument the model's), so that detectron2's
    instantiate, whoever calls it, checks what it builds."""
    from detectron2.utils.registry import locate

    cls = locate(model_class) if isinstance(model_class, str) else model_class
    return check_no_relu_after_tlu(cls(**kwargs), config="lazy")
