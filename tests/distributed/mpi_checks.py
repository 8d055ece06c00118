"""The data-parallel checks that need several processes, run as one job (``mpiexec -n 2``) by
``test_mpi.py``: each rank runs every check, and rank 0 prints what it measured as one line
``RESULTS {json}`` that the tests read. (One job for all of them: starting one costs a second.)

Each rank also computes the single-process reference itself (the whole batch through a copy of
the model), so the comparisons need no extra communication.
"""
import json
import sys
import time

import numpy as np

import minicnn
import minicnn.functional as F
from minicnn import distributed, nn, optim
from minicnn.data import ArrayDataset, DataLoader
from minicnn.training import evaluate

group = distributed.init_process_group()
comm, rank, world = group.comm, group.rank, group.world_size
assert world == 2, "run me with mpiexec -n 2"
results = {}


def plain_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 5))


def bn_model():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(192, 5))
    model[1].running_mean.data[...] = np.array([0.1, -0.2, 0.3])        # statistics that matter in eval mode
    model[1].running_var.data[...] = np.array([0.5, 2.0, 1.5])
    return model


def relative(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def differs_across_ranks(arrays):
    """max |this rank's array - rank 0's|, over the arrays and the ranks (0 when all hold rank 0's)."""
    worst = 0.0
    for a in arrays:
        a = np.ascontiguousarray(a)
        theirs = a.copy()
        comm.Bcast(theirs, root=0)
        worst = max(worst, float(np.max(np.abs(a - theirs))) if a.size else 0.0)
    return comm.allreduce(worst, op=distributed.import_mpi().MAX)


def equivalence(name, make, optimizer, mode="train", bucket_cap_mb=4.0, steps=4):
    """Rank r trains on half r of each global batch of 8; the reference on the whole batch."""
    minicnn.manual_seed(100)
    reference = make().double()
    minicnn.manual_seed(100 + rank)                     # another start on rank 1: DDP must take rank 0's
    local = make().double()
    before = differs_across_ranks([p.data for p in local.parameters()])
    ddp = distributed.DistributedDataParallel(local, bucket_cap_mb=bucket_cap_mb)
    after = differs_across_ranks([p.data for p in local.parameters()])
    for m in (reference, ddp):
        m.train(mode == "train")
    opt_ref = optimizer(reference.parameters())
    opt = optimizer(local.parameters())
    rng = np.random.default_rng(7)
    grad_error = param_error = 0.0
    for _ in range(steps):
        x = rng.standard_normal((8, 2, 8, 8))
        y = rng.integers(0, 5, 8)
        for model, o, xs, ys in ((reference, opt_ref, x, y), (ddp, opt, x[rank * 4:(rank + 1) * 4],
                                                                 y[rank * 4:(rank + 1) * 4])):
            o.zero_grad()
            F.cross_entropy(model(minicnn.tensor(xs)), minicnn.tensor(ys)).backward()
        ddp.average_gradients()
        for p, q in zip(local.parameters(), reference.parameters()):
            grad_error = max(grad_error, relative(p.grad.data, q.grad.data))
        opt_ref.step()
        opt.step()
    for p, q in zip(local.parameters(), reference.parameters()):
        param_error = max(param_error, relative(p.data, q.data))
    numel = sum(p.numel() for p in local.parameters())
    results[name] = dict(differs_before=before, differs_after_wrap=after, grad_error=grad_error,
                         param_error=param_error, ranks_differ=differs_across_ranks([p.data for p in local.parameters()]),
                         buckets=len(ddp.buckets()), bytes=ddp.last_bytes_all_reduced,
                         expected_bytes=(numel + len(list(local.parameters()))) * 8)


SGD = lambda params: optim.SGD(params, lr=0.1, momentum=0.9)        # noqa: E731
ADAM = lambda params: optim.Adam(params, lr=0.01)                    # noqa: E731
equivalence("sgd", plain_model, SGD)
equivalence("adam", plain_model, ADAM)
equivalence("sgd_small_buckets", plain_model, SGD, bucket_cap_mb=0.0002)      # 209 bytes: a bucket per tensor
equivalence("adam_bn_eval", bn_model, ADAM, mode="eval")


# ---- parameters that some ranks, or no rank, reach
class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.unused = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x, use_b):
        return self.a(x) + self.b(x) if use_b else self.a(x)


minicnn.manual_seed(0)
branchy = distributed.DistributedDataParallel(Branchy().double())
x = minicnn.tensor(np.random.default_rng(rank).standard_normal((4, 4)))
branchy(x, use_b=rank == 1).sum().backward()
mine = branchy.module.b.weight.grad.data.copy() if rank == 1 else np.zeros((3, 4))
comm.Bcast(mine, root=1)                     # rank 1's own gradient of b, before averaging
branchy.average_gradients()
results["partial"] = dict(b_error=relative(branchy.module.b.weight.grad.data, mine / 2),
                          unused_is_none=branchy.module.unused.weight.grad is None)


# ---- the sampler and the loader: every sample once per epoch, the global batches of one process
coverage = {}
for n, kwargs in ((12, {}), (13, {}), (13, dict(even=False)), (13, dict(drop_last=True))):
    for epoch in (0, 1):
        shard = distributed.DistributedSampler(n, seed=3, **kwargs).indices(epoch)
        shards = comm.gather(shard.tolist(), root=0)
        if rank == 0:
            coverage[f"{n}-{kwargs}-{epoch}"] = shards
data = ArrayDataset(np.zeros((12, 1, 2, 2), np.uint8), np.arange(12))
loader = DataLoader(data, batch_size=3, sampler=distributed.DistributedSampler(data, seed=5))
single = DataLoader(data, batch_size=6, shuffle=True, seed=5)
batches = {}
for epoch in (0, 1):
    loader.set_epoch(epoch)
    single.set_epoch(epoch)
    mine = [y.tolist() for _, y in loader]
    theirs = comm.gather(mine, root=0)
    if rank == 0:
        batches[epoch] = dict(ranks=theirs, single=[y.tolist() for _, y in single])
results["coverage"] = coverage
results["batches"] = batches


# ---- evaluation: shards of 13 test images, sums added up
minicnn.manual_seed(1)
model = plain_model()
test = ArrayDataset(np.random.default_rng(0).integers(0, 255, (13, 2, 8, 8)).astype(np.uint8),
                    np.random.default_rng(1).integers(0, 5, 13))
shard = DataLoader(test, batch_size=4, sampler=distributed.DistributedSampler(test, shuffle=False, even=False))
results["evaluate"] = dict(ddp=evaluate(distributed.DistributedDataParallel(model), shard),
                           single=evaluate(model, DataLoader(test, batch_size=4)), shard_size=len(shard.sampler))


# ---- different models on the ranks: a clear error on every rank
try:
    distributed.DistributedDataParallel(nn.Linear(4, 3 + rank))
    mismatch = None
except ValueError as exc:
    mismatch = str(exc)
results["mismatch"] = comm.gather(mismatch, root=0)


# ---- a collective that the other rank is late for: bounded in time
start = time.monotonic()
if rank == 0:
    try:
        group.barrier(timeout=0.5)
        timed_out = None
    except distributed.DistributedError as exc:
        timed_out = dict(message=str(exc), seconds=time.monotonic() - start)
else:
    time.sleep(1.5)
    group.barrier()
    timed_out = None
comm.Barrier()
results["timeout"] = timed_out

if rank == 0:
    print("RESULTS " + json.dumps(results), flush=True)
sys.stdout.flush()
