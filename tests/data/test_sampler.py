"""DistributedSampler (each rank's shard of every epoch) and the DataLoader that reads through it.

No MPI here: the sampler is told its rank and the number of ranks, so every rank of a job is
simulated in one process. (tests/distributed/test_two_processes.py runs it on real ranks.)
"""
import numpy as np
import pytest

from minicnn.data import ArrayDataset, DataLoader, DistributedSampler
from minicnn.data.sample_random import SampleGenerator
from minicnn.data.transforms import Compose, RandomCrop, RandomHorizontalFlip


def shards(n, world, epoch=0, **kwargs):
    return [DistributedSampler(n, world, r, **kwargs).indices(epoch) for r in range(world)]


@pytest.mark.parametrize("n, world", [(12, 2), (12, 3), (12, 4), (1, 1), (60, 4)])
def test_even_shards_cover_a_divisible_dataset_exactly_once_per_epoch(n, world):
    previous = None
    for epoch in range(3):
        parts = shards(n, world, epoch, seed=9)
        assert [len(p) for p in parts] == [n // world] * world
        together = np.concatenate(parts)
        assert sorted(together.tolist()) == list(range(n))
        if previous is not None and n > 2:
            assert not np.array_equal(together, previous)          # reshuffled every epoch
        previous = together


@pytest.mark.parametrize("n, world", [(13, 2), (10, 3), (11, 4), (2, 3)])
def test_uneven_data_pads_drops_or_splits_unevenly(n, world):
    padded = shards(n, world, seed=1)
    size = -(-n // world)
    assert [len(p) for p in padded] == [size] * world
    together = np.concatenate(padded).tolist()
    assert set(together) == set(range(n))
    order = np.concatenate([np.random.default_rng(np.random.SeedSequence(1, spawn_key=(0, 0))).permutation(n)] * 3)
    assert sorted(together) == sorted(order[:size * world].tolist())   # the padding repeats the first samples
    dropped = shards(n, world, seed=1, drop_last=True)
    assert [len(p) for p in dropped] == [n // world] * world
    assert len(set(np.concatenate(dropped).tolist())) == n // world * world
    exact = shards(n, world, seed=1, even=False)
    assert sorted(np.concatenate(exact).tolist()) == list(range(n))    # evaluation: each sample once
    assert max(map(len, exact)) - min(map(len, exact)) <= 1
    assert [len(DistributedSampler(n, world, r, even=False)) for r in range(world)] == list(map(len, exact))


def test_every_rank_draws_the_same_order_from_the_seed():
    a, b = DistributedSampler(20, 2, 0, seed=4), DistributedSampler(20, 2, 0, seed=4)
    assert np.array_equal(a.indices(3), b.indices(3))
    assert not np.array_equal(a.indices(3), DistributedSampler(20, 2, 0, seed=5).indices(3))
    assert np.array_equal(DistributedSampler(5, 2, 1, shuffle=False).indices(0), [1, 3, 0])


def test_the_shards_batches_together_are_the_single_process_batches():
    data = ArrayDataset(np.zeros((24, 1, 4, 4), np.uint8), np.arange(24))
    single = DataLoader(data, batch_size=8, shuffle=True, seed=2)
    ranks = [DataLoader(data, batch_size=2, sampler=DistributedSampler(data, 4, r, seed=2)) for r in range(4)]
    for epoch in (0, 1):
        for loader in [single, *ranks]:
            loader.set_epoch(epoch)
        per_rank = [[y.tolist() for _, y in loader] for loader in ranks]
        for step, (_, y) in enumerate(single):
            assert sorted(sum((batches[step] for batches in per_rank), [])) == sorted(y.tolist())
    assert len(ranks[0]) == len(single) == 3


def test_a_sample_is_augmented_alike_in_any_batch_and_on_any_rank():
    data = ArrayDataset(np.arange(13 * 36, dtype=np.uint8).reshape(13, 1, 6, 6) % 251, np.arange(13))
    crop = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip()])
    for epoch in (0, 1):
        single = DataLoader(data, batch_size=5, shuffle=True, seed=3, transform=crop)
        single.set_epoch(epoch)
        seen = {int(y): x for xs, ys in single for x, y in zip(xs, ys)}
        for world in (2, 3):
            for rank in range(world):
                loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, world, rank, seed=3),
                                    transform=crop)
                loader.set_epoch(epoch)
                for xs, ys in loader:
                    for x, y in zip(xs, ys):
                        assert np.array_equal(x, seen[int(y)]), (epoch, world, rank, int(y))
    crops = [next(iter(DataLoader(data, batch_size=13, seed=s, transform=crop)))[0] for s in (3, 4)]
    assert not np.array_equal(*crops)                  # another seed, other crops
    epochs = DataLoader(data, batch_size=13, seed=3, transform=crop)
    assert not np.array_equal(next(iter(epochs))[0], next(iter(epochs))[0])     # and every epoch anew


def test_the_per_sample_generator_streams_are_keyed_by_sample_and_uniform():
    g = SampleGenerator(0, 3, [5, 9, 5])
    offsets, more = g.integers(0, 5, size=3), g.random((3, 2))
    alone = SampleGenerator(0, 3, [9])
    assert alone.integers(0, 5, size=1)[0] == offsets[1] and np.array_equal(alone.random((1, 2))[0], more[1])
    assert offsets[0] == offsets[2] and np.array_equal(more[0], more[2])
    u = SampleGenerator(1, 0, np.arange(100_000)).random(100_000)
    counts = np.histogram(u, 10, range=(0, 1))[0]
    assert 0 <= u.min() and u.max() < 1 and np.all(np.abs(counts - 10_000) < 500)     # ~5 sigma
    k = SampleGenerator(1, 0, np.arange(50_000)).integers(2, 7, size=50_000)
    assert k.min() == 2 and k.max() == 6 and np.all(np.abs(np.bincount(k)[2:] - 10_000) < 500)
    with pytest.raises(ValueError, match=r"size must start with the number of samples \(3\)"):
        g.random(4)
    with pytest.raises(AttributeError, match="SampleGenerator has no choice"):
        g.choice(3)


def test_bad_arguments_name_the_sampler():
    with pytest.raises(ValueError, match=r"DistributedSampler: rank must be in \[0, 2\), got 2"):
        DistributedSampler(10, 2, 2)
    with pytest.raises(ValueError, match="num_replicas must be >= 1"):
        DistributedSampler(10, 0, 0)
    with pytest.raises(TypeError, match="DistributedSampler: rank must be an int, got float"):
        DistributedSampler(10, 2, 1.0)
    with pytest.raises(TypeError, match="expected a dataset or a number of samples, got object"):
        DistributedSampler(object(), 2, 0)
    with pytest.raises(ValueError, match="drop_last=True makes the shards even"):
        DistributedSampler(10, 2, 0, drop_last=True, even=False)
    data = (np.zeros((6, 1, 2, 2), np.uint8), np.arange(6))
    with pytest.raises(ValueError, match="sampler and shuffle=True exclude each other"):
        DataLoader(data, sampler=DistributedSampler(6, 2, 0), shuffle=True)
    with pytest.raises(ValueError, match="the sampler is for 7 samples, the data has 6"):
        DataLoader(data, sampler=DistributedSampler(7, 2, 0))


def test_a_sampled_loader_saves_and_resumes_mid_epoch():
    data = (np.zeros((20, 1, 2, 2), np.uint8), np.arange(20))
    loader = DataLoader(data, batch_size=3, sampler=DistributedSampler(20, 2, 1, seed=6))
    loader.set_epoch(2)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    assert state["sampler"]["rank"] == 1 and state["epoch"] == 2 and state["batch"] == 1
    rest = [y.tolist() for _, y in it]
    again = DataLoader(data, batch_size=3, sampler=DistributedSampler(20, 2, 1, seed=6))
    again.load_state_dict(state)
    assert [y.tolist() for _, y in again] == rest
