"""The gradient buckets with CuPy arrays, under the CuPy stand-in ``fakecupy`` (no GPU needed), run
by test_ddp.py as ``PYTHONPATH=<fakecupy>:<repo> python fakecupy_checks.py``. Prints ``OK ...``.

Three "ranks" (copies of one model on the "GPU", each with its own batch) flatten their gradients
into buckets; the buckets are summed as an all-reduce would, and unflattened on every rank: each
gradient must become the mean of the three, still a CuPy array. With mpi4py, a group of one process
also all-reduces and broadcasts a CuPy array through MPI by way of the host, then through a stand-in
for NCCL (one rank: it only records the streams it is given), which checks that the collectives run on
the communicator's own stream and are waited for; DistributedDataParallel on CuPy parameters averages
inside backward. NCCL itself is not emulated by fakecupy: only real GPUs run it.
"""
import importlib.util

import cupy
import numpy as np

import minicnn
import minicnn.functional as F
from minicnn import distributed, nn

assert minicnn.cuda_available(), "fakecupy was not picked up"


def model():
    minicnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3), nn.Linear(3, 2)).to("cuda")


ranks = [model() for _ in range(3)]
grads = []
for r, m in enumerate(ranks):
    x = minicnn.tensor(np.random.default_rng(r).standard_normal((2, 1, 4, 4)).astype(np.float32)).to("cuda")
    logits = m[3](m[2](m[1](m[0](x))))
    if r != 1:                                         # rank 1 never reaches the last layer
        logits = m[4](logits)
    F.cross_entropy(logits, minicnn.tensor([0, 1]).to("cuda")).backward()
    grads.append([None if p.grad is None else cupy.asnumpy(p.grad.data) for p in m.parameters()])

buckets = [distributed.make_buckets(m.parameters(), cap_bytes=64) for m in ranks]
assert len(buckets[0]) > 2, "a 64-byte cap makes several buckets"
flats = [[b.flatten() for b in bs] for bs in buckets]
assert all(isinstance(f, cupy.ndarray) for fs in flats for f in fs)
summed = [sum(fs[i] for fs in flats) for i in range(len(flats[0]))]        # what the all-reduce does
for bs in buckets:
    for b, flat in zip(bs, summed):
        b.unflatten(flat.copy(), 3)
for i in range(len(list(ranks[0].parameters()))):
    present = [g[i] for g in grads if g[i] is not None]
    expected = sum(present) / 3
    for m in ranks:
        got = list(m.parameters())[i].grad
        assert isinstance(got.data, cupy.ndarray), type(got.data)
        assert np.allclose(cupy.asnumpy(got.data), expected, rtol=1e-6, atol=1e-7), (i, cupy.asnumpy(got.data), expected)
checked = sum(p.numel() for p in ranks[0].parameters())

staged = "no mpi4py"
if importlib.util.find_spec("mpi4py") is not None:
    group = distributed.init_process_group()
    a = cupy.arange(6, dtype=cupy.float32)
    (b,) = group.all_reduce_(a)
    c = cupy.ones(3, dtype=cupy.int64)
    group.broadcast_(c)
    assert b is a and isinstance(a, cupy.ndarray) and cupy.asnumpy(a).tolist() == [0, 1, 2, 3, 4, 5]
    assert cupy.asnumpy(c).tolist() == [1, 1, 1]
    staged = "MPI by way of the host"

    class FakeNccl:
        """NCCL for one process (an all-reduce of one rank changes nothing): records the streams used."""
        NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT32, NCCL_INT64, NCCL_UINT8, NCCL_INT8 = range(7)
        NCCL_SUM, NCCL_MAX, NCCL_MIN = range(3)
        streams = []

        @staticmethod
        def get_unique_id():
            return (1, 2, 3)

        class NcclCommunicator:
            def __init__(self, world, uid, rank):
                assert (world, rank) == (1, 0)

            def allReduce(self, send, recv, count, dtype, op, stream):
                FakeNccl.streams.append(stream)

            broadcast = allReduce

            def check_async_error(self):
                pass

    # the NCCL path: collectives started on the communicator's own stream, waited for by their event
    group.nccl = distributed.nccl.NcclCommunicator(group, nccl=FakeNccl)
    a = cupy.arange(6, dtype=cupy.float32)
    work = group.all_reduce_start(a)
    assert FakeNccl.streams == [group.nccl.stream.ptr] != [cupy.cuda.get_current_stream().ptr]
    assert work.wait() == (a,) and work.is_completed() and cupy.asnumpy(a).tolist() == [0, 1, 2, 3, 4, 5]
    group.broadcast_(c)
    # DistributedDataParallel on CuPy parameters: averaged inside backward (one process: no collective)
    ddp = distributed.DistributedDataParallel(model(), bucket_cap_mb=0.0001)
    x = minicnn.tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)).to("cuda")
    F.cross_entropy(ddp(x), minicnn.tensor([0, 1]).to("cuda")).backward()
    assert ddp.reducer.last_started_early == len(ddp.buckets()) > 2 and not ddp.reducer.unaveraged()
    assert len(FakeNccl.streams) == 2          # the all-reduce and the broadcast (one process: DDP sends nothing)
    staged += "; NCCL on its own stream"
print(f"OK {len(buckets[0])} buckets, {checked} gradient values averaged over 3 ranks on CuPy arrays; {staged}")
