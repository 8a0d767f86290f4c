"""The model builder every frn_det entry point uses: detectron2's build_model, inside the scope in
which get_norm gives every FRN layer cfg.MODEL.FRN's options."""
from detectron2.modeling import build_model as detectron2_build_model

from frn_det.config import frn_options_from


def build_model(cfg):
    """detectron2's build_model(cfg), with MODEL.FRN's options on every FRN layer that any builder
    (frn_det's, detectron2's or a user's registered one) makes through get_norm."""
    with frn_options_from(cfg):
        return detectron2_build_model(cfg)
