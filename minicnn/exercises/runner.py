"""Running a learner's files: loading them in-process (:func:`check_file`), and in a separate process with a
time limit (:func:`check_isolated`), so that an infinite loop or a crash is one line, not a hang.

The worker (``python -m minicnn.exercises.worker FOLDER NAME ...``) checks the named exercises one after the
other and writes, on its standard output, ``START name``, ``STAGE n`` and ``RESULT {json}`` lines; whatever the
learner's code prints goes to the standard error. The parent waits at most ``timeout`` seconds per exercise;
an exercise that runs over, or a worker that dies, is reported and a fresh worker goes on with the rest.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import select
import signal
import subprocess
import sys
import time

from ..kernels.learner import load_file
from .common import Result, run_stages
from .registry import NAMES, get

#: Seconds a worker may take to start (import NumPy and minicnn) before its first exercise.
START_TIME = 60.0


def load(name, folder):
    """The learner's module for exercise ``name`` from ``folder``, or a failed ``Result`` saying why it cannot run."""
    path = os.path.join(folder, name + ".py")
    if not os.path.exists(path):
        return Result(name, False, 0, f"not started: there is no {path} (python -m minicnn.exercises start {name})")
    try:
        module = load_file(path)
    except SyntaxError as exc:
        return Result(name, False, 0, f"{name}.py does not load: {exc.msg} at line {exc.lineno}")
    except ModuleNotFoundError as exc:
        if exc.name in NAMES and not os.path.exists(os.path.join(folder, exc.name + ".py")):
            return Result(name, False, 0, f"{name}.py imports {exc.name}, and there is no {exc.name}.py in {folder}: "
                                          f"start that exercise first (python -m minicnn.exercises start {exc.name})")
        return Result(name, False, 0, f"{name}.py does not load: {exc}")
    except Exception as exc:   # the learner's file raised while loading
        return Result(name, False, 0, f"{name}.py does not load: {type(exc).__name__}: {exc}")
    missing = [f for f in get(name).functions if not hasattr(module, f)]
    if missing:
        return Result(name, False, 0, f"{name}.py does not define {', '.join(missing)} (start the exercise in an empty "
                                      f"folder to see the stub)")
    return module


def _stub_signatures(stub):
    """``{"linear_backward": ["grad", "x", "weight"], "Mul.forward": ["a", "b"], ...}`` from a stub's source."""
    found = {}
    for node in ast.parse(stub).body:
        defs = [(node.name, node)] if isinstance(node, ast.FunctionDef) else \
            [(f"{node.name}.{f.name}", f) for f in node.body if isinstance(f, ast.FunctionDef)] \
            if isinstance(node, ast.ClassDef) else []
        for qualname, f in defs:
            found[qualname] = [a.arg for a in f.args.args if a.arg != "self"]
    return found


def signature_problem(name, module):
    """Why the learner's functions cannot be called as the stub's are (a missing or extra parameter), or None."""
    for qualname, params in _stub_signatures(get(name).stub).items():
        obj = module
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if not callable(obj):
            return f"{qualname} is missing (or not a function)"
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        if "." in qualname:                       # a method: bind without self
            signature = signature.replace(parameters=list(signature.parameters.values())[1:])
        try:
            signature.bind(*params)
        except TypeError:
            return (f"{qualname} must take ({', '.join(params)}), as in the stub; yours takes "
                    f"{str(signature)}")
    return None


def check_module(name, module, on_stage=None) -> Result:
    """Check the module (or any object with the exercise's functions as attributes), in this process."""
    problem = signature_problem(name, module)
    if problem:
        return Result(name, False, 1, problem)
    return run_stages(name, get(name).stages, module, on_stage)


def check_file(name, folder, on_stage=None) -> Result:
    """Check ``folder/name.py`` in this process (no time limit: see :func:`check_isolated`)."""
    module = load(name, folder)
    return module if isinstance(module, Result) else check_module(name, module, on_stage)


def _death(code) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def check_isolated(names, folder, timeout=30.0) -> list:
    """``Result``s of the named exercises, each checked in a worker process with at most ``timeout`` seconds."""
    results, pending = {}, list(names)
    while pending:
        proc = subprocess.Popen([sys.executable, "-m", "minicnn.exercises.worker", os.path.abspath(folder), *pending],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        current, stage, deadline = None, 0, time.monotonic() + START_TIME
        try:
            while pending:
                ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
                line = proc.stdout.readline() if ready else None
                if line is None or not line:
                    name = current or pending[0]
                    if line is None:
                        proc.kill()
                        proc.wait()
                        what = (f"timed out after {timeout:g} s at stage {stage}: an infinite loop? (the limit is "
                                f"--timeout)") if current else "the checker did not start within a minute"
                    else:
                        what = (f"the checker's process {_death(proc.wait())} while running your code at stage "
                                f"{stage}: does your code call os._exit, or crash Python?")
                    results[name] = Result(name, False, stage, what)
                    pending.remove(name)
                    break
                kind, _, rest = line.decode("utf-8", "replace").rstrip("\n").partition(" ")
                if kind == "START":
                    current, stage, deadline = rest, 0, time.monotonic() + timeout
                elif kind == "STAGE":
                    stage = int(rest)
                elif kind == "RESULT":
                    result = Result(**json.loads(rest))
                    results[result.name] = result
                    pending.remove(result.name)
                    current = None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    return [results[n] for n in names]


def worker(argv) -> int:
    """The worker's main: check ``argv[1:]`` from folder ``argv[0]``, one ``RESULT`` line each."""
    folder, names = argv[0], argv[1:]
    out = sys.stdout
    sys.stdout = sys.stderr                       # the learner's prints must not mix with the protocol

    def say(text):
        out.write(text + "\n")
        out.flush()
    for name in names:
        say(f"START {name}")
        result = check_file(name, folder, on_stage=lambda n: say(f"STAGE {n}"))
        say("RESULT " + json.dumps(dataclasses.asdict(result)))
    return 0
