"""Training: the loop (train_loop, amp), checkpoints (checkpoint), the Trainer (trainer, ddp), LazyConfig
runs (lazy_train), SLURM jobs through submitit (slurm), the run's set-up (setup), the FRN health monitor
(monitor) and metrics.json as strict JSON (writers); inference on images: the Predictor (predictor). Config
building is frn_det.config."""
from .amp import CPUAMPTrainer
from .checkpoint import AtomicCheckpointer, FiniteAtomicCheckpointer
from .ddp import create_ddp_model
from .monitor import FRNMonitor, between_images_share, record_norm_stats, uncentred_ratio
from .predictor import PredictError, Predictor
from .setup import check_batch_split, check_recipe_options, prepare_datasets, setup_cfg
from .train_loop import check_losses_finite
from .trainer import Trainer
from .writers import StrictJSONWriter
