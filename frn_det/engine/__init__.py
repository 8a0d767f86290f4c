from .ddp import create_ddp_model, register_cpu_ddp
from .trainer import Trainer, setup_cfg

register_cpu_ddp()
