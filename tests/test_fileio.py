"""Atomic writes: the target is the complete old or the complete new version, never a mix."""
import errno
import os
import subprocess
import sys

import pytest

from minicnn.fileio import atomic_write, atomic_write_text, remove_stale_temporaries


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "state.txt"
    atomic_write_text(path, "first\n")
    atomic_write(path, lambda f: f.write(b"second\n"))
    assert path.read_text() == "second\n"
    assert sorted(os.listdir(path.parent)) == ["state.txt"]
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)      # usual permissions, not mkstemp's


def test_a_failing_write_keeps_the_old_version(tmp_path):
    path = tmp_path / "state.txt"
    atomic_write_text(path, "good\n")

    def broken(f):
        f.write(b"half of the new ver")
        raise KeyboardInterrupt            # Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken)
    assert path.read_text() == "good\n"
    assert sorted(os.listdir(tmp_path)) == ["state.txt"]


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_name_their_writer_and_stale_ones_are_removed(tmp_path):
    seen = []
    atomic_write(tmp_path / "last.npz", lambda f: seen.extend(os.listdir(tmp_path)))
    assert len(seen) == 1 and seen[0].startswith(f".last.npz.{os.getpid()}.") and seen[0].endswith(".tmp")
    dead = dead_pid()
    stale = [tmp_path / f".last.npz.{dead}.k2j3h4.tmp", tmp_path / f".metrics.csv.{dead}.x.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    (tmp_path / f".extract-{dead}-abc").mkdir()                      # a killed archive extraction
    (tmp_path / f".extract-{dead}-abc" / "data_batch_1.bin").write_bytes(b"part")
    live = tmp_path / f".best.npz.{os.getpid()}.q.tmp"             # a write in progress (this process)
    live.write_bytes(b"in progress")
    others = [tmp_path / ".hidden", tmp_path / "notes.tmp", tmp_path / ".x.notapid.y.tmp"]
    for p in others:
        p.write_bytes(b"keep")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(map(str, stale + [tmp_path / f".extract-{dead}-abc"]))
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [live, *others] + [tmp_path / "last.npz"])
    assert remove_stale_temporaries(tmp_path / "nowhere") == []


def test_a_full_disk_names_the_file_and_keeps_the_old_version(tmp_path):
    path = tmp_path / "metrics.csv"
    atomic_write_text(path, "epoch\n1\n")

    def full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))      # what write() raises: no file name
    with pytest.raises(OSError) as err:
        atomic_write(path, full)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert path.read_text() == "epoch\n1\n" and os.listdir(tmp_path) == ["metrics.csv"]


def test_a_folder_whose_name_is_a_file_is_reported_as_not_a_directory(tmp_path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(NotADirectoryError) as info:
        atomic_write_text(tmp_path / "taken" / "out.json", "{}")
    assert info.value.errno == errno.ENOTDIR and info.value.filename == str(tmp_path / "taken")
    atomic_write_text(tmp_path / "new" / "deeper" / "out.json", "{}")        # missing folders are made
    assert (tmp_path / "new" / "deeper" / "out.json").read_text() == "{}"
    assert sorted(os.listdir(tmp_path)) == ["new", "taken"]
