"""The fast kernels on several threads, for the tests that check them there (``from threaded import ...``).

With the default minimum slice sizes the small shapes of a test would run in one thread, so
:func:`fast_kernels_on` sets them all to zero when it runs more than one.
"""
import contextlib

from hypothesis import HealthCheck, settings

from minicnn import kernels
from minicnn.kernels.fast import conv, misc, norm, pool
from minicnn.kernels.fast import threads as fast_threads


@contextlib.contextmanager
def fast_kernels_on(threads, monkeypatch):
    """The fast kernels (also under MINICNN_KERNELS=textbook: the threads are theirs) on ``threads``
    threads, every minimum slice size at zero when there are several; yields ``threads``."""
    if threads > 1:
        monkeypatch.setattr(conv, "MIN_SLICE_MACS", 0)
        monkeypatch.setattr(pool, "MIN_SLICE_VALUES", 0)
        monkeypatch.setattr(norm, "MIN_SLICE_VALUES", 0)
        monkeypatch.setattr(misc, "MIN_THREADED_MACS", 0)
        monkeypatch.setattr(fast_threads, "MIN_ELEMENTWISE_VALUES", 0)
    before = fast_threads.get_num_threads()
    fast_threads.set_num_threads(threads)
    try:
        with kernels.use("fast"):
            yield threads
    finally:
        fast_threads.set_num_threads(before)


def shared_fixture(max_examples=None):
    """Hypothesis settings for a test whose fixture is the same for every example it draws."""
    return settings(suppress_health_check=[HealthCheck.function_scoped_fixture],
                    **({} if max_examples is None else {"max_examples": max_examples}))
