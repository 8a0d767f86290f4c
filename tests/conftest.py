
import pytest
import torch

import frn_det  # noqa: F401  (registers FRN in detectron2)



@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
