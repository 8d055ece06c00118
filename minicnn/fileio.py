"""Atomic files: a file is either its complete old version or its complete new one, never half written.

Checkpoints, metrics, plots and downloaded datasets are all written the same way: into a
temporary file beside the target, flushed and fsync'ed, then renamed onto the target
(``os.replace`` is atomic on POSIX and Windows), and finally the folder's entry is fsync'ed so the
rename itself survives a crash.  If anything fails (an exception, Ctrl-C) the temporary file is
removed and the target is untouched.  A process killed outright (``kill -9``) cannot remove it: its
temporary file names its pid, and :func:`remove_stale_temporaries` removes it later, once that
process is gone.  Standard library only, so every layer may use it.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile


def atomic_write(path, write, mode="wb"):
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    ``write`` may raise (for example when a download turns out corrupt): the temporary file is
    then removed and ``path`` keeps its old content (or stays absent).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp, stage = None, "folder"
    try:
        try:
            os.makedirs(folder, exist_ok=True)
        except FileExistsError:      # the folder's name is taken by a file: say what is wrong with it
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder) from None
        stage = "file"
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=folder)
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError) and stage == "file":
            exc.filename = path     # the target, not the temporary name (and write() on a full disk names none)
        raise
    fsync_dir(folder)
    return path


def temporary_prefix(path) -> str:
    """The start of the name of a temporary file for ``path``: ``.<name>.<pid>.`` (see
    :func:`remove_stale_temporaries`)."""
    return f".{os.path.basename(os.fspath(path))}.{os.getpid()}."


def remove_stale_temporaries(folder) -> list:
    """Remove the temporary files and folders in ``folder`` that a killed write left behind.

    They are the hidden ``.<name>.<pid>.<random>.tmp`` files of :func:`atomic_write` (and
    ``.extract-<pid>-<random>`` folders of archive extraction) whose process ``<pid>`` is no longer
    running: a process that was killed (``kill -9``, a power cut) never removed them.  Those of a
    live process (a write in progress) are left alone.  Returns the paths removed.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        pid = _writer_pid(name)
        if pid is None or _process_alive(pid):
            continue
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def _writer_pid(name: str):
    """The pid in a temporary name of this module (or of an archive extraction), else None."""
    if name.startswith(".") and name.endswith(".tmp"):
        parts = name.split(".")        # ['', <name parts...>, pid, random, 'tmp']
        return int(parts[-3]) if len(parts) >= 5 and parts[-3].isdigit() else None
    if name.startswith(".extract-"):
        pid = name[len(".extract-"):].split("-")[0]
        return int(pid) if pid.isdigit() else None
    return None


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                    # e.g. EPERM: it exists, under another user
        return True
    return True


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
