"""DistributedDataParallel for frn_det's Trainer (Trainer.build_ddp_model).

detectron2's create_ddp_model passes device_ids even for CPU models, which DistributedDataParallel
rejects; gloo (CPU) runs need none.
"""
from detectron2.engine.defaults import create_ddp_model as d2_create_ddp_model
from detectron2.utils import comm


def create_ddp_model(model, *, fp16_compression=False, **kwargs):
    """detectron2's create_ddp_model, without device_ids for a model on the CPU."""
    if comm.get_world_size() > 1 and next(model.parameters()).device.type == "cpu":
        kwargs.setdefault("device_ids", None)
    return d2_create_ddp_model(model, fp16_compression=fp16_compression, **kwargs)
