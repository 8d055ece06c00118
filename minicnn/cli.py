"""What minicnn's command lines (``train``, ``predict``, ``summary``) do when something goes wrong.

One policy for all of them (``bench/run.py`` follows it too):

* **usage error** (an option that is invalid, or options that do not fit together): argparse's
  one line ``prog: error: ...`` and exit status 2, found before anything is written (no run folder);
* **runtime error** (the disk, the data, a checkpoint): one line ``prog: error: <what failed>.
  <what to do>`` and exit status 1; every file already written stays;
* ``--debug``, or ``MINICNN_DEBUG=1`` in the environment, prints the traceback as well.

An unexpected exception (a bug in minicnn) keeps its traceback.  Also here: the ``KEY=VALUE``
parser of ``-o`` / ``--model-option``, shared by ``train`` and ``summary``.  Standard library only.
"""
from __future__ import annotations

import argparse
import errno
import math
import os
import sys
import traceback

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """A runtime failure, with the one line to show: what failed and what to do."""


#: Checks of minicnn's settings in the environment, each ``() -> message or None``, added by the module
#: that reads them (``kernels``: MINICNN_KERNELS, MINICNN_NUM_THREADS): every command line's parser
#: runs them after its arguments, so a wrong value is a usage error of each (this level imports none).
ENVIRONMENT_CHECKS = []


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, with a usage error printed as one line ``prog: error: message`` (no usage text),
    and the environment checked too (:data:`ENVIRONMENT_CHECKS`)."""

    quiet = False        # True: exit 2 without a word (a process of a parallel job other than rank 0)

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        for check in ENVIRONMENT_CHECKS:
            if (problem := check()):
                self.error(problem)
        return parsed

    def error(self, message):
        self.exit(EXIT_USAGE, None if self.quiet else f"{self.prog}: error: {one_line(message)}\n")


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback too (also: MINICNN_DEBUG=1)")


def debug_requested(args=None) -> bool:
    """``--debug`` was given, or ``MINICNN_DEBUG`` is set to something other than 0/false/no."""
    if getattr(args, "debug", False):
        return True
    return os.environ.get("MINICNN_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def one_line(text) -> str:
    """``text`` (an exception's message may span lines) joined into one line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


# --------------------------------------------------------------------------- OS errors

_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.EACCES: "permission denied: choose a folder you may write to",
    errno.EPERM: "permission denied: choose a folder you may write to",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder, not a file: check the path",
    errno.EIO: "the device reported an input/output error: check the disk",
}


def describe_os_error(exc: OSError) -> str:
    """``'<path>: <strerror> (<advice>)'`` for an ``OSError``, e.g. a full disk or a read-only folder."""
    where = exc.filename if exc.filename is not None else None
    reason = exc.strerror or str(exc) or type(exc).__name__
    advice = _OS_ADVICE.get(exc.errno)
    text = f"{where}: {reason}" if where is not None else reason
    return f"{text} ({advice})" if advice else text


# --------------------------------------------------------------------------- reporting

def report(prog: str, message, debug: bool = False) -> int:
    """Print ``prog: error: message`` (one line; the traceback first when ``debug``) and return 1."""
    if debug:
        traceback.print_exc()
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return EXIT_ERROR


def run_reporting(prog: str, debug: bool, body, expected=(),
                  memory_hint="use a smaller --batch-size (or a smaller model or input)") -> int:
    """``body()``'s exit status; a runtime error becomes one line and exit status 1.

    Runtime errors are :class:`CommandError`, ``OSError`` (described with advice), ``MemoryError``
    and the exception types in ``expected`` (their message is shown as it is).  Anything else is
    a bug: it propagates with its traceback.
    """
    try:
        return body()
    except CommandError as exc:
        return report(prog, exc, debug)
    except tuple(expected) as exc:
        return report(prog, exc, debug)
    except MemoryError:
        return report(prog, f"out of memory: {memory_hint}", debug)
    except OSError as exc:
        return report(prog, describe_os_error(exc), debug)


# --------------------------------------------------------------------------- KEY=VALUE options

def parse_value(text: str):
    """An option value: ``true``/``false`` (any case) -> bool, ``none``/``null`` -> None, integers,
    floats, comma-separated values (``3,224,224`` or ``(3, 224, 224)``) -> a tuple; else the text."""
    text = text.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if "," in text:
        inner = text[1:-1] if text[:1] + text[-1:] in ("()", "[]") else text
        return tuple(parse_value(part) for part in inner.split(",") if part.strip())
    return text


def parse_option(text: str) -> tuple:
    """``'KEY=VALUE'`` -> ``(key, value)`` with ``-`` in the key read as ``_`` (an argparse ``type``)."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as aux_logits=false, got {text!r}")
    return key, parse_value(value)


def check_options(name: str, options: dict, accepted: dict, reserved=None) -> str | None:
    """Why ``options`` do not fit the builder of ``name`` whose options and defaults are ``accepted``,
    or None when they do: an unknown key, a key the command line sets another way (``reserved``:
    key -> how, e.g. ``{"num_classes": "set it with --num-classes"}``), or a value of the wrong kind
    (``c3_table=yes``)."""
    for key, value in options.items():
        if key in (reserved or {}):
            return f"{name} option {key} is not set with -o: {reserved[key]}"
        if key not in accepted:
            return (f"{name} has no option {key!r}; its options are "
                    + ", ".join(f"{k}={v!r}" for k, v in accepted.items() if k not in (reserved or {})))
        default = accepted[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            return f"{name} option {key} takes true or false, got {value!r}"
        if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(default, int) and not isinstance(value, int))):
            return f"{name} option {key} takes {'an integer' if isinstance(default, int) else 'a number'}, got {value!r}"
    return None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def number_in(low: float, high: float, low_open: bool = False, high_open: bool = False):
    """An argparse ``type``: a finite number in ``[low, high]`` (either end open as asked; ``high`` may be inf)."""
    if math.isinf(high):
        interval = f"{'>' if low_open else '>='} {low:g}"
    else:
        interval = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {interval}, got {text!r}") from None
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if not math.isfinite(value) or below or above:
            raise argparse.ArgumentTypeError(f"must be a finite number {interval}, got {text}")
        return value
    return parse


def existing_folder(text: str) -> str:
    """An argparse ``type``: a folder that exists (never created, never replaced by another)."""
    if not os.path.isdir(text):
        what = "is a file, not a folder" if os.path.exists(text) else "does not exist"
        raise argparse.ArgumentTypeError(f"{text} {what}")
    return text
