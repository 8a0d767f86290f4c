"""detectron2's create_ddp_model passes device_ids even for CPU models, which DistributedDataParallel
rejects; gloo (CPU) runs need none. Installed into detectron2.engine.defaults, where DefaultTrainer
looks it up."""
import detectron2.engine.defaults as d2_defaults
from detectron2.utils import comm

_d2_create_ddp_model = d2_defaults.create_ddp_model


def create_ddp_model(model, *, fp16_compression=False, **kwargs):
    if comm.get_world_size() > 1 and next(model.parameters()).device.type == "cpu":
        kwargs.setdefault("device_ids", None)
    return _d2_create_ddp_model(model, fp16_compression=fp16_compression, **kwargs)


def register_cpu_ddp():
    d2_defaults.create_ddp_model = create_ddp_model
