"""DistributedDataParallel, the sampler and the process group across two real processes.

All checks run in ONE job, ``mpiexec -n 2 python tests/distributed/mpi_checks.py`` (a job costs
about a second to start), which prints what rank 0 measured; the tests below read it. Each rank
trains with PyTorch's loop (no explicit averaging) on its shard of every augmented global batch of 8
and compares with a reference that trains on the whole batch in one process (float64; models
without BatchNorm, and with it in eval mode).
"""
import json
import os

import numpy as np
import pytest
from mpi_helpers import HERE, mpiexec, needs_mpi

pytestmark = needs_mpi
TOLERANCE = 1e-12        # relative, float64: measured about 7e-16


@pytest.fixture(scope="module")
def job():
    proc = mpiexec(2, [os.path.join(HERE, "mpi_checks.py")], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):])


@pytest.mark.parametrize("case", ["sgd", "adam", "sgd_small_buckets", "adam_bn_eval", "sgd_dropout"])
def test_two_half_batches_give_the_whole_batch_gradients_and_steps(job, case):
    r = job[case]
    assert r["differs_before"] > 0.01          # the ranks built different weights...
    assert r["differs_after_wrap"] == 0.0      # ...and DistributedDataParallel gave every rank rank 0's
    assert r["grad_error"] < TOLERANCE         # averaged gradients == the whole batch's, every step
    assert r["param_error"] < TOLERANCE        # after 4 optimizer steps: the one-process parameters
    assert r["ranks_differ"] == 0.0            # and the ranks stay bitwise equal
    assert r["started_early"] == [r["buckets"]] * 4      # every bucket started by a hook, inside backward
    assert r["bytes_of_a_second_average"] == 0          # average_gradients() after backward: nothing to do


def test_buckets_and_the_bytes_they_carry(job):
    assert job["sgd"]["buckets"] == 1
    assert job["sgd_small_buckets"]["buckets"] == 4            # 4 tensors, a 209-byte cap: one bucket each
    for case in ("sgd", "sgd_small_buckets", "adam_bn_eval"):  # float64 gradients + one count per parameter
        assert job[case]["bytes"] == job[case]["expected_bytes"]


def test_parameters_reached_by_one_rank_or_none(job):
    assert job["partial"]["b_error"] == 0.0          # rank 1's gradient / 2 on both ranks (no_sync, then by hand)
    assert job["partial"]["b_error_in_backward"] == 0.0      # the same, averaged inside backward
    assert job["partial"]["unused_is_none"]


def test_no_sync_over_two_micro_batches_is_one_batch_of_their_size(job):
    r = job["no_sync"]
    assert r["sent_in_no_sync"] == 0                  # no communication under no_sync()
    assert r["grad_error"] < TOLERANCE and r["param_error"] < TOLERANCE


def test_a_step_on_gradients_never_averaged_raises_on_every_rank(job):
    for rank in job["unaveraged"]:
        for case in ("outside", "no_sync"):
            assert rank[case] is not None, case
            assert rank[case].startswith("SGD.step(): 4 of the 4 parameters of a DistributedDataParallel model hold "
                                         "gradients that were not averaged over the 2 processes"), rank[case]
        assert rank["after_average"] == 0.0           # average_gradients() by hand, then the step: ranks equal


@pytest.mark.parametrize("n, kwargs", [(12, "{}"), (13, "{}"), (13, "{'even': False}"), (13, "{'drop_last': True}")])
def test_the_sampler_covers_the_dataset_once_per_epoch(job, n, kwargs):
    orders = []
    for epoch in (0, 1):
        rank0, rank1 = job["coverage"][f"{n}-{kwargs}-{epoch}"]
        together = rank0 + rank1
        if kwargs == "{}":                 # even shards: 13 is padded with one repeated sample
            assert len(rank0) == len(rank1) == -(-n // 2)
            assert sorted(set(together)) == list(range(n)) and len(together) == n + n % 2
        elif "even" in kwargs:             # evaluation shards: every sample exactly once
            assert sorted(together) == list(range(n)) and (len(rank0), len(rank1)) == (7, 6)
        else:                              # drop_last: even, the tail left out, nothing twice
            assert len(rank0) == len(rank1) == n // 2 and len(set(together)) == len(together) == 12
        orders.append(together)
    if kwargs != "{'even': False}":
        assert orders[0] != orders[1]      # reshuffled every epoch


def test_the_ranks_batches_together_are_the_one_process_batches(job):
    for epoch in ("0", "1"):
        ranks, single = job["batches"][epoch]["ranks"], job["batches"][epoch]["single"]
        assert sorted(ranks[0][0] + ranks[0][1] + ranks[1][0] + ranks[1][1]) == list(range(12))
        for step in range(2):
            assert sorted(ranks[0][step] + ranks[1][step]) == sorted(single[step])


def test_sharded_evaluation_adds_up_to_the_whole_test_set(job):
    (loss, acc), (ref_loss, ref_acc) = job["evaluate"]["ddp"], job["evaluate"]["single"]
    assert job["evaluate"]["shard_size"] == 7      # rank 0's shard of 13
    assert acc == ref_acc and abs(acc * 13 - round(acc * 13)) < 1e-9
    assert np.isclose(loss, ref_loss, rtol=1e-6)   # float32 model


def test_different_models_on_the_ranks_are_refused_on_every_rank(job):
    rank0, rank1 = job["mismatch"]
    assert rank0 is not None and "hold a model other than rank 0's" in rank0
    assert "rank 1 has ['weight', [4, 4], 'float32'], rank 0 has ['weight', [3, 4], 'float32']" in rank1


def test_a_collective_waits_a_bounded_time(job):
    timed_out = job["timeout"]
    assert timed_out is not None, "the barrier did not time out"
    assert "barrier: rank 0 of 2 got no answer from the other processes within 0.5 s" in timed_out["message"]
    assert 0.5 <= timed_out["seconds"] < 1.4       # the other rank came after 1.5 s
