"""Shared test configuration: hypothesis profiles and device parametrisation."""
import os

import pytest
from hypothesis import HealthCheck, settings

import minicnn
from minicnn import backend

# "ci" (the default): derandomised, no deadline, bounded examples, so every run is the same.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=25, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

cuda = pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and an NVIDIA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=cuda)]


@pytest.fixture(params=DEVICES)
def device(request):
    """Run a test on every device: 'cpu' always, 'cuda' where CuPy and a GPU are present."""
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    minicnn.manual_seed(0)
    yield
