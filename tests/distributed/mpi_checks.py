"""The data-parallel checks that need several processes, run as one job (``mpiexec -n 2``) by
``test_mpi.py``: each rank runs every check, and rank 0 prints what it measured as one line
``RESULTS {json}`` that the tests read. (One job for all of them: starting one costs a second.)

Each rank also computes the single-process reference itself (the whole batch through a copy of
the model), so the comparisons need no extra communication.
"""
import copy
import json
import sys
import time

import numpy as np

import minicnn
import minicnn.functional as F
from minicnn import distributed, nn, optim
from minicnn.data import ArrayDataset, Compose, DataLoader, Normalize, RandomCrop, RandomHorizontalFlip
from minicnn.training import evaluate

group = distributed.init_process_group()
comm, rank, world = group.comm, group.rank, group.world_size
assert world == 2, "run me with mpiexec -n 2"
results = {}


def plain_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 5))


def dropout_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5),
                         nn.Linear(48, 5))


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


AUGMENTED = ArrayDataset(np.random.default_rng(3).integers(0, 256, (32, 2, 8, 8)).astype(np.uint8),
                         np.random.default_rng(4).integers(0, 5, 32))
AUGMENT = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip(), Normalize(0.5, 0.25)])


def equivalence(name, make, optimizer, mode="train", bucket_cap_mb=4.0, steps=4):
    """PyTorch's loop (zero_grad, loss.backward(), step: no explicit averaging) on augmented batches:
    rank r trains on its DistributedSampler shard (global batches of 8: 4 per rank), the reference
    in one process on the same global batches (a shuffling DataLoader with the same seed)."""
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
    single = DataLoader(AUGMENTED, batch_size=8, shuffle=True, seed=9, transform=AUGMENT)
    shard = DataLoader(AUGMENTED, batch_size=4, sampler=distributed.DistributedSampler(AUGMENTED, seed=9),
                       transform=AUGMENT)
    grad_error = param_error = 0.0
    early = []
    for step, ((x, y), (xs, ys)) in enumerate(list(zip(single, shard))[:steps]):
        for model, o, xb, yb in ((reference, opt_ref, x, y), (ddp, opt, xs, ys)):
            minicnn.manual_seed(1000 + step)            # dropout: the same generator state for both
            o.zero_grad()
            F.cross_entropy(model(minicnn.tensor(xb.astype(np.float64))), minicnn.tensor(yb)).backward()
        early.append(ddp.reducer.last_started_early)
        for p, q in zip(local.parameters(), reference.parameters()):
            grad_error = max(grad_error, relative(p.grad.data, q.grad.data))
        opt_ref.step()
        opt.step()
    for p, q in zip(local.parameters(), reference.parameters()):
        param_error = max(param_error, relative(p.data, q.data))
    numel = sum(p.numel() for p in local.parameters())
    bytes_before = group.bytes_all_reduced
    ddp.average_gradients()                             # after a backward pass: nothing left to average
    results[name] = dict(differs_before=before, differs_after_wrap=after, grad_error=grad_error,
                         param_error=param_error, ranks_differ=differs_across_ranks([p.data for p in local.parameters()]),
                         buckets=len(ddp.buckets()), bytes=ddp.last_bytes_all_reduced,
                         expected_bytes=(numel + len(list(local.parameters()))) * 8, started_early=early,
                         bytes_of_a_second_average=group.bytes_all_reduced - bytes_before)


SGD = lambda params: optim.SGD(params, lr=0.1, momentum=0.9)        # noqa: E731
ADAM = lambda params: optim.Adam(params, lr=0.01)                    # noqa: E731
equivalence("sgd", plain_model, SGD)
equivalence("adam", plain_model, ADAM)
equivalence("sgd_small_buckets", plain_model, SGD, bucket_cap_mb=0.0002)      # 209 bytes: a bucket per tensor
equivalence("adam_bn_eval", bn_model, ADAM, mode="eval")
equivalence("sgd_dropout", dropout_model, SGD)                   # each rank keeps its rows of the masks


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
with branchy.no_sync():                      # local gradients first
    branchy(x, use_b=rank == 1).sum().backward()
mine = branchy.module.b.weight.grad.data.copy() if rank == 1 else np.zeros((3, 4))
comm.Bcast(mine, root=1)                     # rank 1's own gradient of b, before averaging
branchy.average_gradients()                  # by hand, after no_sync
by_hand = relative(branchy.module.b.weight.grad.data, mine / 2)
for p in branchy.parameters():
    p.grad = None
branchy(x, use_b=rank == 1).sum().backward()                 # inside backward: the ranks reach other parameters
results["partial"] = dict(b_error=by_hand, b_error_in_backward=relative(branchy.module.b.weight.grad.data, mine / 2),
                          unused_is_none=branchy.module.unused.weight.grad is None)


# ---- no_sync: two micro-batches of 4 per rank accumulate locally, then one average = one batch of 16
minicnn.manual_seed(5)
reference = plain_model().double()
ddp = distributed.DistributedDataParallel(copy.deepcopy(reference), bucket_cap_mb=0.0002)
opt_ref, opt = optim.SGD(reference.parameters(), lr=0.1, momentum=0.9), optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
loader = DataLoader(AUGMENTED, batch_size=16, shuffle=True, seed=2, transform=AUGMENT)
shard = DataLoader(AUGMENTED, batch_size=8, sampler=distributed.DistributedSampler(AUGMENTED, seed=2), transform=AUGMENT)
accumulation, sent_in_no_sync = 0.0, 0
for (x, y), (xs, ys) in zip(loader, shard):
    opt_ref.zero_grad()
    F.cross_entropy(reference(minicnn.tensor(x.astype(np.float64))), minicnn.tensor(y)).backward()
    opt.zero_grad()
    sent = group.bytes_all_reduced
    with ddp.no_sync():
        (F.cross_entropy(ddp(minicnn.tensor(xs[:4].astype(np.float64))), minicnn.tensor(ys[:4])) / 2).backward()
    sent_in_no_sync += group.bytes_all_reduced - sent
    (F.cross_entropy(ddp(minicnn.tensor(xs[4:].astype(np.float64))), minicnn.tensor(ys[4:])) / 2).backward()
    for p, q in zip(ddp.parameters(), reference.parameters()):
        accumulation = max(accumulation, relative(p.grad.data, q.grad.data))
    opt_ref.step()
    opt.step()
results["no_sync"] = dict(grad_error=accumulation, sent_in_no_sync=sent_in_no_sync,
                          param_error=max(relative(p.data, q.data) for p, q in zip(ddp.parameters(), reference.parameters())))


# ---- a step on gradients that were never averaged: one clear error, on every rank
def step_error(backward):
    opt.zero_grad()
    backward()
    try:
        opt.step()
    except distributed.UnaveragedGradientsError as exc:
        return str(exc)
    return None


def under_no_sync():
    with ddp.no_sync():
        F.cross_entropy(ddp(xs64), ys64).backward()


xs64, ys64 = minicnn.tensor(xs.astype(np.float64)), minicnn.tensor(ys)
unaveraged = dict(outside=step_error(lambda: F.cross_entropy(ddp.module(xs64), ys64).backward()),
                  no_sync=step_error(under_no_sync))
ddp.average_gradients()                          # averaged by hand: the step goes on
opt.step()
unaveraged["after_average"] = differs_across_ranks([p.data for p in ddp.parameters()])
results["unaveraged"] = comm.gather(unaveraged, root=0)


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
