"""Learn by doing: write minicnn's forward and backward passes yourself, have them checked, then train on them.

    python -m minicnn.exercises list                       # the 15 exercises, in the tutorial's order, and your status
    python -m minicnn.exercises start conv2d_backward      # writes ./minicnn-exercises/conv2d_backward.py (a stub)
    python -m minicnn.exercises check conv2d_backward      # checks it in stages; exit 0 only when all pass
    python -m minicnn.exercises hint conv2d_backward       # the next hint, one at a time
    python -m minicnn.exercises solution conv2d_backward   # where the textbook kernel is (--show prints it)
    python -m minicnn.train lenet5 --kernels ./minicnn-exercises   # LeNet-5 on your own kernels

The same from Python: :func:`start`, :func:`check`, :func:`hint`, :func:`solution`, :func:`status`, and
:func:`check_module` (a module or namespace in this process, no time limit).

A check runs in stages and stops at the first failure (``common.STAGES``): the signature, the outputs' shapes
and dtypes, the inputs left unmodified; a tiny hand-computed case, printed as small matrices; random shapes
and edge cases against the textbook kernels; finite-difference gradients for every backward. The common
wrong answers are recognised and named. ``check`` runs the learner's code in a separate process with a time
limit (``runner``). The checks live in one module per chapter (``ch1_autograd`` ... ``ch4_training``), with
each exercise's stub, hints and the textbook code that solves it.

This package sits at the command-line level: it imports the engine, and nothing in the engine imports it.
The engine's side is ``minicnn.kernels.learner`` (``kernels.use(folder)``), which knows only the files and
functions an exercise folder holds.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os

from .. import fileio
from .common import STAGES, Exercise, Result
from .registry import EXERCISES, NAMES, get
from .runner import check_file, check_isolated, check_module

__all__ = ["DEFAULT_DIR", "EXERCISES", "NAMES", "STAGES", "Exercise", "Result", "Location", "get", "start", "check",
           "check_file", "check_module", "hint", "solution", "status"]

#: Where ``start`` writes and ``check`` reads, unless told otherwise.
DEFAULT_DIR = "minicnn-exercises"
_HINTS_FILE = ".hints.json"


def start(name, folder=DEFAULT_DIR) -> str:
    """Write the stub of exercise ``name`` into ``folder`` (made if needed) and return its path.
    Never overwrites: ``FileExistsError`` when the file is there."""
    exercise = get(name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name + ".py")
    with open(path, "x", encoding="utf-8") as f:          # "x": fails if the file exists
        f.write(exercise.stub)
    return path


def check(names=None, folder=DEFAULT_DIR, timeout=30.0, isolated=True) -> list:
    """Check the named exercises (default: every exercise file in ``folder``); a ``Result`` each.
    ``isolated``: in a worker process, with ``timeout`` seconds per exercise; else in this process."""
    names = [get(n).name for n in names] if names else \
        [n for n in NAMES if os.path.exists(os.path.join(folder, n + ".py"))]
    if not isolated:
        return [check_file(n, folder) for n in names]
    return check_isolated(names, folder, timeout) if names else []


def hint(name, folder=DEFAULT_DIR) -> str:
    """The next hint of exercise ``name`` ("hint 2 of 3: ..."); which one comes next is kept in ``folder``."""
    exercise = get(name)
    path = os.path.join(folder, _HINTS_FILE)
    seen = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                seen = json.load(f)
        except (OSError, ValueError):
            seen = {}
        seen = seen if isinstance(seen, dict) else {}
    count = seen.get(name, 0) if isinstance(seen.get(name, 0), int) else 0
    index = min(count, len(exercise.hints) - 1)
    os.makedirs(folder, exist_ok=True)
    seen[name] = index + 1
    fileio.atomic_write_text(path, json.dumps(seen, indent=1) + "\n")
    last = " (the last one: python -m minicnn.exercises solution " + name + " shows where the textbook does it)" \
        if index == len(exercise.hints) - 1 else ""
    return f"hint {index + 1} of {len(exercise.hints)}: {exercise.hints[index]}{last}"


@dataclasses.dataclass
class Location:
    """Where a piece of the textbook solution is: ``path`` (relative to the checkout), lines ``first``-``last``."""
    qualname: str
    path: str
    first: int
    last: int
    source: str

    def line(self) -> str:
        return f"{self.path}, lines {self.first}-{self.last}: {self.qualname}"


def solution(name) -> list:
    """The textbook code that solves exercise ``name``: a ``Location`` per function or class, its lines read from
    the source now (so they never go stale)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    places = []
    for ref in get(name).solution:
        module_name, _, qualname = ref.partition(":")
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        lines, first = inspect.getsourcelines(obj)
        path = os.path.relpath(inspect.getsourcefile(obj), root)
        places.append(Location(qualname, path, first, first + len(lines) - 1, "".join(lines)))
    return places


def status(folder=DEFAULT_DIR, timeout=30.0) -> list:
    """``(exercise, status)`` for every exercise: "not started", "not implemented yet", "failing at stage N",
    "passing" (the files present are checked, each in a worker process)."""
    results = {r.name: r for r in check(None, folder, timeout)} if os.path.isdir(folder) else {}
    out = []
    for exercise in EXERCISES:
        r = results.get(exercise.name)
        text = ("not started" if r is None else "passing" if r.passed
                else "not implemented yet" if "not implemented yet" in r.message
                else f"failing at stage {r.stage}" if r.stage else "does not load")
        out.append((exercise, text))
    return out
