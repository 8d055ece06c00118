"""What every exercise's check shares: the stages, the messages, the comparisons and the printing.

A check is a list of stage functions ``stage(mod)``; each raises :class:`Wrong` with a message written
for the learner when something is off. :func:`run_stages` runs them in order and stops at the first
failure; an exception from the learner's own code becomes a message too (``NotImplementedError`` from a
stub: "not implemented yet").
"""
from __future__ import annotations

import dataclasses
import os
import traceback

import numpy as np

from ..kernels.learner import STUB_MARK

#: The four stages, in order (a check may leave one out: an exercise without a backward has no stage 4).
STAGES = {1: "signature, shapes, dtypes, inputs left unmodified", 2: "a tiny hand-computed case",
          3: "random shapes and edge cases against the textbook", 4: "finite-difference gradients"}


class Wrong(Exception):
    """A check failed: ``str(self)`` is the message for the learner."""


@dataclasses.dataclass
class Result:
    """One exercise's outcome: ``passed``, the ``stage`` it failed at (0: it could not run at all) and the message."""
    name: str
    passed: bool
    stage: int = 0
    message: str = ""

    def line(self) -> str:
        if self.passed:
            return f"{self.name}: passed all {self.stage} stages"
        if not self.stage:                  # it could not run: not started, or the file does not load
            return f"{self.name}: {self.message}"
        return f"{self.name}: failing at stage {self.stage} ({STAGES.get(self.stage, '?')}): {self.message}"


def _learner_frame(exc):
    """(file, line, function) of the deepest frame of the traceback that is not minicnn's own code."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not os.path.abspath(f.filename).startswith(here)]
    return (os.path.basename(frames[-1].filename), frames[-1].lineno, frames[-1].name) if frames else None


def describe_exception(exc, name) -> str:
    """A learner-readable line for an exception raised while their code ran."""
    where = _learner_frame(exc)
    if isinstance(exc, NotImplementedError) and STUB_MARK in str(exc):
        if where and where[0] != name + ".py":
            return (f"not implemented yet: {where[2]} ({where[0]}), which your {name} calls, still raises "
                    f"NotImplementedError: do that exercise first")
        return f"not implemented yet: {name}.py still raises NotImplementedError. Write it, then check again"
    if isinstance(exc, RecursionError):
        return ("your code recursed too deeply (Python's limit is about 1000 calls): a graph of thousands of nodes "
                "needs an explicit stack, not recursion")
    at = f" at {where[0]}, line {where[1]}, in {where[2]}" if where else ""
    return f"your code raised {type(exc).__name__}{at}: {exc}".rstrip(": ")


def run_stages(name, stages, mod, on_stage=None) -> Result:
    """Run ``stages`` (a list of ``(number, stage_fn)``) on the learner's module ``mod``; stop at the first failure.
    ``on_stage(number)`` is called as each stage starts."""
    for number, stage in stages:
        if on_stage is not None:
            on_stage(number)
        try:
            with np.errstate(all="ignore"):
                stage(mod)
        except Wrong as exc:
            return Result(name, False, number, str(exc))
        except SystemExit as exc:
            return Result(name, False, number, f"your code called sys.exit({exc.code!r}): return a value instead")
        except Exception as exc:   # the learner's code failed: say where, in one line
            return Result(name, False, number, describe_exception(exc, name))
    return Result(name, True, len(stages))


# --------------------------------------------------------------------------- comparisons and printing

def show(a) -> str:
    """A small array as compact text (4 significant digits, one line per row)."""
    return np.array2string(np.asarray(a, dtype=np.float64), precision=4, suppress_small=True, max_line_width=100,
                           threshold=60)


def expected_got(expected, got) -> str:
    """'expected / got / difference' blocks of small matrices."""
    expected, got = np.asarray(expected), np.asarray(got)
    text = f"\n  expected:\n{_indent(show(expected))}\n  got:\n{_indent(show(got))}"
    if expected.shape == got.shape:
        text += f"\n  difference (got - expected):\n{_indent(show(got.astype(np.float64) - expected))}"
    return text


def _indent(text):
    return "\n".join("    " + line for line in text.splitlines())


def close(a, b, rtol=1e-5, atol=1e-6) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol))


def array_of(what, value, shape, dtype=None):
    """Check that ``value`` is an array of ``shape`` (and ``dtype``); raise ``Wrong`` saying what came instead."""
    if isinstance(value, np.generic) and tuple(shape) == ():
        value = np.asarray(value)                       # a NumPy scalar is a 0-d result
    if not isinstance(value, np.ndarray):
        raise Wrong(f"{what} must be a NumPy array of shape {shape}, got {type(value).__name__}"
                    + (" (did you forget to return it?)" if value is None else ""))
    if value.shape != tuple(shape):
        raise Wrong(f"{what} has shape {value.shape}, expected {tuple(shape)}")
    if dtype is not None and value.dtype != dtype:
        raise Wrong(f"{what} has dtype {value.dtype}, expected {np.dtype(dtype)}: the output keeps the input's dtype "
                    f"(a float64 constant such as np.float64(...) or np.zeros(shape) without dtype= promotes it)")
    return value


def unmodified(what, before, after):
    """Raise ``Wrong`` when an input was changed in place."""
    if not np.array_equal(before, after, equal_nan=True):
        raise Wrong(f"your code changed its input {what} in place: work on a copy (x = x + ..., not x += ...); "
                    f"the engine still needs the input after your function returns")


def compare(what, expected, got, wrong_answers=(), rtol=1e-5, atol=1e-6, context=""):
    """``got`` must equal ``expected``. If it matches one of ``wrong_answers`` (``(array, message)`` pairs),
    that message names the mistake; otherwise the arrays are printed (small) or the worst element named."""
    got = np.asarray(got)
    if close(expected, got, rtol, atol):
        return
    for wrong, message in wrong_answers:
        if wrong is not None and close(wrong, got, rtol, atol):
            raise Wrong(f"{what}{context}: {message}")
    if np.asarray(expected).shape != got.shape:
        raise Wrong(f"{what}{context} has shape {got.shape}, expected {np.asarray(expected).shape}")
    if got.size <= 36:
        raise Wrong(f"{what}{context} is wrong:{expected_got(expected, got)}")
    err = np.abs(got.astype(np.float64) - expected)
    worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(err), np.inf, err))), got.shape)
    raise Wrong(f"{what}{context} is wrong: {int((err > atol + rtol * np.abs(expected)).sum())} of {got.size} "
                f"elements differ; at index {tuple(int(i) for i in worst)} expected {float(expected[worst]):.6g}, "
                f"got {float(got[worst]):.6g}")


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar function ``f()`` with respect to the float64 array ``x`` (perturbed in place)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = f()
        flat[i] = orig - eps
        minus = f()
        flat[i] = orig
        g[i] = (plus - minus) / (2 * eps)
    return grad


def check_grad(what, analytic, f, x, eps=1e-6, wrong_answers=()):
    """Stage 4: ``analytic`` (the learner's gradient of f with respect to x) against finite differences."""
    array_of(what, analytic, x.shape)
    compare(what, numeric_grad(f, x, eps), analytic, wrong_answers, rtol=1e-4, atol=1e-6,
            context=" (against finite differences)")


def pairs(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: its file's ``name``, the tutorial ``chapter``, a one-line ``summary``, the ``functions``
    (or classes) its file defines, the ``stub`` written by ``start``, the ``hints`` (one at a time), the
    textbook code that solves it (``solution``: ``"module:qualname"`` strings) and the check's ``stages``."""
    name: str
    chapter: int
    summary: str
    functions: tuple
    stub: str
    hints: tuple
    solution: tuple
    stages: tuple


def overlap_mistake(what, expected, got, counts):
    """Raise ``Wrong`` when ``got`` is right wherever fewer than two windows meet (``counts`` per element) and
    wrong only where they overlap: the gradients of overlapping windows were assigned, not added."""
    got = np.asarray(got)
    if got.shape != np.shape(expected):
        return
    single = np.asarray(counts) < 2
    if (~single).any() and not close(expected, got) and close(np.asarray(expected)[single], got[single]):
        raise Wrong(f"{what} is wrong only where windows overlap (stride < kernel, or dilation): add (+=) the "
                    f"gradient of every window an element belongs to, do not assign (=) it")
