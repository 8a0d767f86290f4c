import torch
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping, reduce_param_groups

from frn_det.layers import frn_layer_types


def get_frn_optimizer_params(model, base_lr=None, weight_decay=None, weight_decay_norm=None,
                             bias_lr_factor=1.0, weight_decay_bias=None, overrides=None):
    """detectron2's get_default_optimizer_params, with the parameters (weight, bias, tau, eps_l) of
    frn_det's layers (frn_det.layers.frn_layer_types: FRN_NORMS' classes and TLU) treated as norm
    parameters: detectron2 only recognises torch's norm classes."""
    groups = get_default_optimizer_params(
        model, base_lr=base_lr, weight_decay=weight_decay, weight_decay_norm=weight_decay_norm,
        bias_lr_factor=bias_lr_factor, weight_decay_bias=weight_decay_bias, overrides=overrides,
    )
    if weight_decay_norm is None:
        return groups
    # Same precedence as detectron2: the norm value, unless a per-name override sets weight decay.
    overridden = {name for name, o in (overrides or {}).items() if "weight_decay" in o}
    if weight_decay_bias is not None:
        overridden.add("bias")
    frn_params = {
        p
        for m in model.modules() if isinstance(m, frn_layer_types())
        for name, p in m.named_parameters(recurse=False) if name not in overridden
    }
    expanded = [{**g, "params": [p]} for g in groups for p in g["params"]]
    for g in expanded:
        if g["params"][0] in frn_params:
            g["weight_decay"] = weight_decay_norm
    return reduce_param_groups(expanded)


def frn_optimizer_params_of(cfg, model):
    """The parameter groups detectron2's build_optimizer makes from cfg.SOLVER, with FRN's parameters
    (gamma, beta, tau, eps_l) taking SOLVER.WEIGHT_DECAY_NORM: for a project's own optimizer (e.g. AdamW in
    its DefaultTrainer.build_optimizer). Groups without a weight decay take the optimizer's own."""
    return get_frn_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )


def build_optimizer(cfg, model):
    """detectron2's SGD build_optimizer (cfg.SOLVER) with FRN-aware norm weight decay: the one for a
    project's DefaultTrainer.build_optimizer. detectron2's gives FRN's parameters SOLVER.WEIGHT_DECAY, as
    it recognises only torch's norm classes."""
    return maybe_add_gradient_clipping(cfg, torch.optim.SGD)(
        frn_optimizer_params_of(cfg, model),
        lr=cfg.SOLVER.BASE_LR,
        momentum=cfg.SOLVER.MOMENTUM,
        nesterov=cfg.SOLVER.NESTEROV,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        foreach=True,  # as detectron2's build_optimizer
    )

