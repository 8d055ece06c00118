"""Atomic files: a file is either its complete old version or its complete new one, never half written.

Checkpoints, metrics, plots and downloaded datasets are all written the same way: into a
temporary file beside the target, flushed and fsync'ed, then renamed onto the target
(``os.replace`` is atomic on POSIX and Windows), and finally the folder's entry is fsync'ed so the
rename itself survives a crash.  If anything fails (an exception, Ctrl-C) the temporary file is
removed and the target is untouched.  Standard library only, so every layer may use it.
"""
from __future__ import annotations

import os
import tempfile


def atomic_write(path, write, mode="wb"):
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    ``write`` may raise (for example when a download turns out corrupt): the temporary file is
    then removed and ``path`` keeps its old content (or stays absent).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(folder)
    return path


def atomic_write_text(path, text: str):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def fsync_dir(folder):
    """Make renames in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
