"""Kernel launches per step of the GPU path, counted by the CuPy stand-in (``bench/launches.py``): a change
that adds launches to a LeNet-5 or ResNet-18 training step or a GoogLeNet inference batch fails here.
Lower the pins when a change removes some (the issue's targets: W1 <= 80, W3 <= 300, W6 <= 220; before
issue 25: 162, 472, 464). The counts do not depend on the batch size, so the steps run on tiny batches.
It runs where the other CUDA tests do: in ``tests/test_standin.py``'s child process under the stand-in
(whose RawKernels are compiled once there); on a real GPU there is nothing to count."""
import os
import sys

import pytest

from conftest import cuda

pytestmark = cuda

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
# Launches per step; none of them may sync with the host. Cross-entropy's mean over the rows that count (PyTorch's
# ignore_index, which a GPU cannot rule out without reading the targets) costs one reduction more: W1 59 -> 60, W3 300 -> 301.
PINNED = {"W1": 60, "W3": 301, "W6": 216}


def test_cuda_launches_per_step_are_pinned():
    cupy = pytest.importorskip("cupy")
    if not hasattr(cupy, "OPS"):
        pytest.skip("launch counts are the CuPy stand-in's estimate (a real CuPy has no cupy.OPS)")
    sys.path.insert(0, BENCH)
    try:
        import launches
    finally:
        sys.path.remove(BENCH)
    counts = {w: launches.count(w, batch=1 if w == "W6" else 2)[:2] for w in PINNED}
    for w, pinned in PINNED.items():
        n, syncs = counts[w]
        assert syncs == 0, (w, counts)
        assert n <= pinned, f"{w}: {n} launches per step, pinned at {pinned}: {counts}"
