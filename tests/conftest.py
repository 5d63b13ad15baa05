import os
import warnings

import pytest
import torch

os.environ.setdefault("PYTHONWARNINGS", "ignore")
warnings.filterwarnings("ignore")


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one intra-op thread is several times faster on a busy machine; restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
