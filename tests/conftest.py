import os
import warnings

import pytest
import torch
from hypothesis import HealthCheck, settings

os.environ.setdefault("PYTHONWARNINGS", "ignore")
warnings.filterwarnings("ignore")

# Property tests draw the same examples on every run in CI (CI=true) and by default elsewhere, so a
# red run is reproducible; `--hypothesis-profile=explore` draws fresh examples locally.
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("explore", deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one intra-op thread is several times faster on a busy machine; restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
