
import pytest
import torch

import frn_det  # noqa: F401  (registers FRN in detectron2)



@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def fresh_choice(monkeypatch):
    """The FRN dispatcher reads FRN_DET_IMPL once and caches its choices: start from nothing, end so too."""
    from frn_det.layers import dispatch

    monkeypatch.delenv("FRN_DET_IMPL", raising=False)
    dispatch.reset()
    yield
    monkeypatch.undo()
    dispatch.reset()


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory):
    """A 4-image embedded shapes dataset, registered once, for tests that train and evaluate."""
    from detectron2.data import DatasetCatalog

    from frn_det.data.register import register_shapes_dataset

    name = "tests_tiny_shapes"
    if name not in DatasetCatalog.list():
        register_shapes_dataset(name, tmp_path_factory.mktemp("shapes"), "tiny", 4, seed=3, look="uniform")
    return name
