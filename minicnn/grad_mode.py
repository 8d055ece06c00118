"""Grad mode: whether operations are recorded for backward. ``no_grad``, ``enable_grad``,
``inference_mode``, ``set_grad_enabled`` and ``is_grad_enabled``, with PyTorch's names.

The mode belongs to the thread, as in PyTorch: a ``no_grad`` block in one thread leaves another
thread's recording alone, and every new thread starts with recording on. ``minicnn.autograd`` reads
``is_grad_enabled()`` on every operation. This module imports nothing from minicnn.
"""
from __future__ import annotations

import functools
import inspect
import threading


class _State(threading.local):
    enabled = True          # each thread's own flag, True in a new thread


_state = _State()


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()`` (or ``inference_mode()``, ``set_grad_enabled(False)``), in this thread."""
    return _state.enabled


class _GradMode:
    """Context manager and decorator that sets whether operations are recorded."""

    mode = True

    def __enter__(self):
        self._prev, _state.enabled = _state.enabled, self.mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def __call__(self, func):
        if inspect.isgeneratorfunction(func):
            return self._generator(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self._clone():
                return func(*args, **kwargs)
        return wrapper

    def _generator(self, func):
        """A decorated generator runs each of its steps in the mode (the caller's code between them does not)."""
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            gen = func(*args, **kwargs)
            step, value = gen.send, None
            while True:
                try:
                    with self._clone():
                        out = step(value)
                except StopIteration as stop:
                    return stop.value
                step = gen.send
                try:
                    value = yield out
                except GeneratorExit:
                    with self._clone():
                        gen.close()
                    raise
                except BaseException as exc:          # thrown into the wrapper: on into the generator
                    step, value = gen.throw, exc
        return wrapper

    def _clone(self):
        return type(self)()


class no_grad(_GradMode):
    """``with minicnn.no_grad():`` (or ``@minicnn.no_grad()``): record no graph; results need no gradient."""

    mode = False


class enable_grad(_GradMode):
    """Re-enable recording inside a ``no_grad`` block."""

    mode = True


class inference_mode(_GradMode):
    """``with minicnn.inference_mode():`` (or ``inference_mode(False)``, or as a decorator): as ``no_grad``.

    PyTorch also marks the tensors made inside as inference tensors, which autograd later refuses;
    minicnn's are ordinary tensors that need no gradient.
    """

    def __init__(self, mode: bool = True):
        self.mode = not mode

    def _clone(self):
        return inference_mode(not self.mode)


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` switches recording off now (a function call, as in PyTorch), or only
    inside a ``with`` block: the mode before the call comes back at its end."""

    def __init__(self, mode: bool):
        self._prev, self.mode = _state.enabled, bool(mode)
        _state.enabled = self.mode

    def __enter__(self):
        return self

    def __call__(self, func):
        _state.enabled = self._prev   # as a decorator: the mode changes only inside the calls
        return super().__call__(func)

    def _clone(self):
        return set_grad_enabled(self.mode)
