"""The embedded shapes datasets (render: the looks; shapes: their files; register: detectron2's
catalogs) and the checks of any dataset a config names (checks)."""
from .checks import MalformedDatasetError, check_datasets, load_dataset, naming_malformed_datasets
from .register import (DEFAULT_DATASETS, default_dataset_root, ensure_generated, register_default_datasets,
                       register_shapes_dataset)
from .render import LOOKS, SHAPE_CLASSES
from .shapes import GENERATOR_VERSION, generate_shapes_dataset
