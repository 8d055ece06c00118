"""Atomic writes: the target is the complete old or the complete new version, never a mix."""
import os

import pytest

from minicnn.fileio import atomic_write, atomic_write_text


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
