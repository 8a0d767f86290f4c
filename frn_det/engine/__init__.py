from .amp import CPUAMPTrainer
from .monitor import FRNMonitor, between_images_share, record_norm_stats, uncentred_ratio
from .ddp import create_ddp_model, register_cpu_ddp
from .trainer import Trainer, build_cfg, check_batch_split, check_losses_finite, prepare_datasets, setup_cfg

register_cpu_ddp()
