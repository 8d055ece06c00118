"""The gradient buckets of DistributedDataParallel, in one process (no MPI): several ranks are
simulated by copies of a model, their buckets summed as an all-reduce sums them. And the same on
CuPy arrays under the CuPy stand-in ``fakecupy`` (``../shared/tools/fakecupy``), with a stand-in
NCCL module for the streams; NCCL itself runs only on a machine with GPUs.
"""
import os

import numpy as np
import pytest
from conftest import standin_env
from mpi_helpers import HERE, python

import minicnn
import minicnn.functional as F
from minicnn import distributed, nn
from minicnn.distributed import Bucket, DistributedDataParallel, make_buckets



def grads_of(model, seed, use_last=True):
    x = minicnn.tensor(np.random.default_rng(seed).standard_normal((3, 4)))
    h = model[0](x)
    out = model[1](h) if use_last else h[:, :2]
    F.cross_entropy(out, minicnn.tensor([0, 1, 1])).backward()
    return [None if p.grad is None else p.grad.data.copy() for p in model.parameters()]


def test_buckets_take_parameters_in_reverse_order_up_to_the_cap_and_one_dtype_each():
    params = [nn.Parameter(np.zeros(n, dtype)) for n, dtype in
              [(10, np.float32), (20, np.float32), (5, np.float64), (3, np.float64), (100, np.float32), (1, np.float32)]]
    buckets = make_buckets(params, cap_bytes=100)
    assert [[id(p) for p in b.params] for b in buckets] == [[id(params[5])], [id(params[4])],
                                                              [id(params[3]), id(params[2])], [id(params[1])],
                                                              [id(params[0])]]
    assert [b.dtype for b in buckets] == [np.float32, np.float32, np.float64, np.float32, np.float32]
    assert [b.nbytes for b in buckets] == [(1 + 1) * 4, (100 + 1) * 4, (8 + 2) * 8, (20 + 1) * 4, (10 + 1) * 4]
    assert len(make_buckets(params, cap_bytes=1 << 20)) == 3          # split only where the dtype changes
    with pytest.raises(ValueError, match="Bucket: needs at least one parameter"):
        Bucket([])


def test_flatten_sum_unflatten_is_the_mean_of_the_ranks_gradients():
    ranks = []
    for _ in range(3):
        minicnn.manual_seed(0)
        ranks.append(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)).double())
    grads = [grads_of(m, seed=r, use_last=r != 2) for r, m in enumerate(ranks)]   # rank 2 skips the last layer
    buckets = [make_buckets(m.parameters(), cap_bytes=40) for m in ranks]
    flats = [[b.flatten() for b in bs] for bs in buckets]
    summed = [sum(fs[i] for fs in flats) for i in range(len(flats[0]))]
    for bs in buckets:
        for b, flat in zip(bs, summed):
            b.unflatten(flat.copy(), 3)
    for i in range(4):
        expected = sum(g[i] for g in grads if g[i] is not None) / 3
        for m in ranks:
            np.testing.assert_allclose(list(m.parameters())[i].grad.data, expected, rtol=1e-14, atol=0)
    held = ranks[0][0].weight.grad.data
    flat = buckets[0][-1].flatten()               # a new array every step: the gradient above never changes
    flat[:] = 7
    assert not np.any(held == 7)


def test_a_parameter_no_rank_reached_keeps_no_gradient():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)).double()
    grads_of(model, seed=0, use_last=False)
    (bucket,) = make_buckets(model.parameters(), cap_bytes=1 << 20)
    flat = bucket.flatten()
    assert flat[bucket.numel:].tolist() == [0, 0, 1, 1]          # one count per parameter, reversed order
    bucket.unflatten(flat * 2, 2)                                   # two such ranks
    assert model[1].weight.grad is None and model[1].bias.grad is None
    assert model[0].weight.grad is not None


def test_wrapping_checks_its_arguments_before_it_needs_a_process_group():
    with pytest.raises(TypeError, match="DistributedDataParallel: expected a minicnn.nn.Module, got int"):
        DistributedDataParallel(3)
    with pytest.raises(ValueError, match="bucket_cap_mb must be a number > 0, got 0"):
        DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)
    if not distributed.is_initialized():
        with pytest.raises(RuntimeError, match=r"call minicnn.distributed.init_process_group\(\) first"):
            DistributedDataParallel(nn.Linear(2, 2))
        with pytest.raises(RuntimeError, match="not initialised"):
            distributed.DistributedSampler(10)
    assert distributed.DistributedSampler(10, num_replicas=2, rank=1).indices(0).size == 5


def test_buckets_of_cupy_arrays_under_fakecupy():
    proc = python([os.path.join(HERE, "fakecupy_checks.py")], env_extra=standin_env(), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK 4 buckets, 55 gradient values averaged over 3 ranks on CuPy arrays"), proc.stdout
