from .synthetic import (
    DEFAULT_DATASETS,
    GENERATOR_VERSION,
    SHAPE_CLASSES,
    VARIATIONS,
    default_dataset_root,
    ensure_generated,
    generate_shapes_dataset,
    register_default_datasets,
    register_shapes_dataset,
)
