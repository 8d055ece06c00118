"""The fast kernels' recycled arrays (``kernels.fast.memory.empty``) and the CPU optimizer step that
works in cache-sized chunks (``kernels.fast.misc.sgd_step``): each against the plain NumPy result."""
import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn
from minicnn import kernels, optim
from minicnn.kernels.fast import memory, misc
from minicnn.kernels.fast import threads as fast_threads


@pytest.fixture
def pool():
    memory.release_memory()
    yield memory
    memory.release_memory()


def _address(a):
    return a.__array_interface__["data"][0]


# --------------------------------------------------------------------------- recycled arrays


def test_empty_gives_aligned_arrays_of_the_shape_and_dtype_asked(pool):
    for shape, dtype in [((300, 200), np.float32), ((7, 11, 13, 17), np.float64), (40000, np.int32), ((2, 3), bool)]:
        a = pool.empty(np, shape, dtype)
        assert a.shape == ((shape,) if isinstance(shape, int) else shape) and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable
        if a.nbytes >= pool.POOL_MIN_BYTES:
            assert _address(a) % pool.ALIGNMENT == 0


def test_memory_is_recycled_only_once_nothing_uses_it(pool):
    a = pool.empty(np, (512, 512), np.float32)
    where = _address(a)
    view = a[10:20].T                    # a view keeps the memory in use
    del a
    b = pool.empty(np, (512, 512), np.float32)
    assert _address(b) != where
    del view
    gc.collect()
    c = pool.empty(np, (256, 1024), np.float32)   # same size, other shape: recycled
    assert _address(c) == where
    c[...] = 1
    b.fill(2)                            # b has memory of its own
    assert (c == 1).all() and (b == 2).all()


def test_small_arrays_are_not_pooled_and_release_memory_gives_back_the_free_ones(pool):
    before = pool.pool_bytes()
    small = pool.empty(np, (10, 10), np.float32)
    assert pool.pool_bytes() == before and small.base is None
    keep = pool.empty(np, (400, 400), np.float32)
    dropped = pool.empty(np, (300, 400), np.float32)
    del dropped
    assert pool.release_memory() == 300 * 400 * 4
    assert pool.pool_bytes() == keep.nbytes
    keep[...] = 3                        # still valid after the release
    assert keep.sum() == 3 * keep.size


def test_sizes_not_asked_for_any_more_are_forgotten(pool, monkeypatch):
    monkeypatch.setattr(memory, "STALE_AFTER", 1)
    old = pool.empty(np, (600, 600), np.float32)
    del old
    for _ in range(200):                 # many requests of another (more than 2x smaller) size, none of the old one
        pool.empty(np, (200, 400), np.float32)
    pool.empty(np, (201, 400), np.float32)      # a miss: stale buffers are looked for
    assert 600 * 600 * 4 not in memory._pool


def test_a_request_takes_a_free_buffer_up_to_twice_its_size_when_none_has_its_size(pool):
    big = pool.empty(np, (1000, 1000), np.float32)
    where = _address(big)
    del big
    smaller = pool.empty(np, (700, 1000), np.float32)         # 1.43x smaller: reuses the free buffer
    assert _address(smaller) == where and pool.pool_bytes() == 1000 * 1000 * 4
    tiny = pool.empty(np, (400, 1000), np.float32)            # 2.5x smaller than the (busy) buffer: its own
    assert _address(tiny) != where


def test_kernel_outputs_stay_valid_while_held_and_recycling_never_changes_them(pool):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8, 16, 16)).astype(np.float32)
    with kernels.use("fast"):
        first, _ = kernels.relu_forward(x, need_mask=False)
        kept = first.copy()
        for _ in range(3):
            kernels.relu_forward(-x, need_mask=False)
    np.testing.assert_array_equal(first, kept)


# --------------------------------------------------------------------------- the SGD step


def _plain_sgd(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """optim.SGD's NumPy formula (what the textbook set runs)."""
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        if buf is None:
            buf = g.copy()
        else:
            buf = buf * momentum + (g if dampening == 0 else (1.0 - dampening) * g)
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


@settings(max_examples=40)
@given(st.integers(0, 5000), st.sampled_from([0.0, 0.9]), st.sampled_from([0.0, 0.3]), st.sampled_from([0.0, 1e-2]),
       st.booleans(), st.booleans(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**16))
def test_sgd_step_in_chunks_equals_the_plain_numpy_step(size, momentum, dampening, weight_decay, nesterov, maximize,
                                                        dtype, seed):
    nesterov = nesterov and momentum > 0 and dampening == 0
    rng = np.random.default_rng(seed)
    p0, g = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    want_p, want_buf = p0, None
    p, buf = p0.copy(), (np.empty_like(p0) if momentum else None)
    before = misc.STEP_CHUNK
    misc.STEP_CHUNK = 333                # several chunks, the last one short
    try:
        for step in range(3):
            want_p, want_buf = _plain_sgd(want_p, g, want_buf, 0.1, momentum, dampening, weight_decay, nesterov, maximize)
            misc.sgd_step(p, g, buf, 0.1, momentum, dampening, weight_decay, nesterov, maximize, step == 0)
            np.testing.assert_array_equal(p, want_p)
            if momentum:
                np.testing.assert_array_equal(buf, want_buf)
    finally:
        misc.STEP_CHUNK = before


@pytest.mark.parametrize("threads", [1, 3])
def test_sgd_fast_and_textbook_steps_agree_exactly_on_a_model(threads, monkeypatch):
    monkeypatch.setattr(misc, "STEP_CHUNK", 100)
    before = fast_threads.get_num_threads()
    fast_threads.set_num_threads(threads)
    try:
        results = []
        for mode in ("textbook", "fast"):
            minicnn.manual_seed(0)
            model = minicnn.nn.Sequential(minicnn.nn.Linear(30, 20), minicnn.nn.Tanh(), minicnn.nn.Linear(20, 5))
            opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)
            x = minicnn.randn(8, 30)
            with kernels.use(mode):
                for _ in range(3):
                    opt.zero_grad()
                    (model(x) ** 2).sum().backward()
                    opt.step()
            results.append([p.data.copy() for p in model.parameters()])
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)
    finally:
        fast_threads.set_num_threads(before)


def test_free_memory_beyond_the_cap_is_given_back_at_a_miss(pool, monkeypatch):
    monkeypatch.setattr(memory, "FREE_MAX_BYTES", 4 << 20)
    for k in range(10):                  # ten sizes of 1 MB or so, each freed at once (as under no_grad)
        pool.empty(np, (1000 + k, 256), np.float32)
    free_mb = pool.pool_bytes() / 2**20
    assert free_mb <= 4 + 1.01           # at most the cap, plus the last buffer
    kept = pool.empty(np, (1009, 256), np.float32)     # the most recent size is still there
    assert _address(kept) in {e[0].__array_interface__["data"][0] + e[1] for e in memory._pool[1009 * 256 * 4]}


def test_sgd_steps_an_empty_parameter_in_both_kernel_sets():
    for mode in ("textbook", "fast"):
        with kernels.use(mode):
            p = minicnn.nn.Parameter(np.zeros((0, 3), np.float32))
            p.grad = np.zeros((0, 3), np.float32)
            opt = optim.SGD([p], lr=0.1, momentum=0.9)
            opt.step()
            opt.step()
            assert p.shape == (0, 3)


def test_sgd_keeps_updating_a_loaded_momentum_buffer_that_was_strided():
    """A momentum buffer from outside (e.g. a channels-last PyTorch weight's) may not be C-contiguous:
    it is stored contiguous, so the fast step updates it in place as the plain step does."""
    results = {}
    for mode in ("textbook", "fast"):
        with kernels.use(mode):
            w = minicnn.nn.Parameter(np.full((3, 4, 5, 5), 1.0, np.float32))
            opt = optim.SGD([w], lr=0.1, momentum=0.9)
            state = opt.state_dict()
            state["state"] = {0: {"momentum_buffer": np.asfortranarray(np.ones((3, 4, 5, 5), np.float32))}}
            opt.load_state_dict(state)
            for _ in range(3):
                w.grad = np.ones((3, 4, 5, 5), np.float32)
                opt.step()
            results[mode] = (w.data.copy(), np.array(opt.state[w]["momentum_buffer"]))
    for got, want in zip(results["fast"], results["textbook"]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(results["fast"][1], 0.9 ** 3 + 0.9 ** 2 + 0.9 + 1, rtol=1e-6)    # 3.439


def test_the_pool_tracks_a_bounded_number_of_buffers(monkeypatch):
    """Arrays a caller keeps (features collected over a dataset) stay tracked until the cap; past it
    new ones are plain arrays, so a miss never scans an unbounded pool; memory is released on demand."""
    memory.release_memory()
    monkeypatch.setattr(memory, "POOL_MAX_ENTRIES", memory.pool_entries() + 20)
    kept = [memory.empty(np, (memory.POOL_MIN_BYTES // 4,), np.float32) for _ in range(50)]
    assert memory.pool_entries() == memory.POOL_MAX_ENTRIES
    assert all(a.shape == (memory.POOL_MIN_BYTES // 4,) and a.dtype == np.float32 for a in kept)
    del kept
    gc.collect()
    assert minicnn.release_memory() >= 20 * memory.POOL_MIN_BYTES
    assert memory.pool_entries() == memory.POOL_MAX_ENTRIES - 20     # the 20 tracked ones were freed
