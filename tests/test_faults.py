"""Fault injection: corrupt inputs for every file minicnn reads, full disks, read-only folders, and
``kill -9`` in the middle of every kind of write.

What must hold: a corrupt input is refused with an error that names the file (never a traceback
from deep inside, never a huge allocation, never code run from it); a failed or killed write
leaves the previous version of the file intact, and the next run removes its temporary file.
"""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from minicnn import checkpoint


def npy_bytes(shape, descr="<f8", data=b""):
    """An .npy entry whose header declares ``shape`` and ``descr``, followed by ``data``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def write_npz(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name + ".npy", data)
    return path


def meta(state):
    text = json.dumps({"format": "minicnn-checkpoint", "version": 1, "state": state}).encode()
    return npy_bytes((len(text),), "|u1", text)


# --------------------------------------------------------------------------- corrupt checkpoints

def test_a_small_npz_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    """A few hundred bytes declaring 8 TB: refused from the header, before any allocation."""
    path = write_npz(tmp_path / "bomb.npz", {"__meta__": meta({"model": {"__array__": "a0"}}),
                                             "a0": npy_bytes((10 ** 12,))})
    assert os.path.getsize(path) < 1000
    with pytest.raises(checkpoint.CheckpointError, match=r"bomb.npz: its entry 'a0.npy' declares a 1000000000000 "
                                                         r"float64 array \(8000000000000 bytes\) but holds 0 bytes"):
        checkpoint.load(path)


@pytest.mark.parametrize("entry, problem", [
    (npy_bytes((3,), "<f8", b"\0" * 16), r"declares a 3 float64 array \(24 bytes\) but holds 16 bytes"),
    (npy_bytes((2,), "|O", b"\0" * 16), "holds Python objects"),
    (b"\x93NUMPY\x09\x00" + b"\0" * 20, "unknown array format"),
    (b"not an npy file at all", "cannot be read"),
], ids=["short-data", "python-objects", "unknown-version", "not-npy"])
def test_entries_whose_header_and_data_disagree_are_refused(tmp_path, entry, problem):
    path = write_npz(tmp_path / "bad.npz", {"__meta__": meta({"w": {"__array__": "a0"}}), "a0": entry})
    with pytest.raises(checkpoint.CheckpointError, match=problem):
        checkpoint.load(path)


def test_a_deflated_entry_claiming_more_than_deflate_can_hold_is_refused(tmp_path):
    path = tmp_path / "zipbomb.npz"
    write_npz(path, {"__meta__": meta({})})
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a0.npy", npy_bytes((10 ** 7,), "|u1", b"\0" * 10 ** 7))      # honest, 10 MB of zeros
    checkpoint.load(path)                                    # deflate holds that in ~10 kB: fine
    data = bytearray(path.read_bytes())                       # now claim 1000 times more in the directory
    central = data.rfind(b"PK\x01\x02")
    size_at = central + 24                                   # uncompressed size in the central directory
    data[size_at:size_at + 4] = (10 ** 10 % 2 ** 32).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError, match="a0.npy"):
        checkpoint.load(path)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "meta-json", "meta-list"])
def test_damaged_checkpoints_are_refused_with_the_file_named(tmp_path, damage):
    path = tmp_path / "last.npz"
    checkpoint.save(path, {"model": {"w": np.arange(1000, dtype=np.float32)}, "epoch": 1})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) * 2 // 3]
    elif damage == "flip":
        data[len(data) // 3] ^= 0xFF                         # inside the array: the CRC catches it
    elif damage == "garbage":
        data = bytearray(b"\x00" * 100)
    if damage.startswith("meta"):
        text = b"{not json" if damage == "meta-json" else json.dumps(
            {"format": "minicnn-checkpoint", "version": 1, "state": [1, 2]}).encode()
        write_npz(path, {"__meta__": npy_bytes((len(text),), "|u1", text)})
    else:
        path.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError, match=str(path).replace("\\", "\\\\")) as err:
        state = checkpoint.load(path)
        checkpoint.require(state, ["model"], path)
    assert "--resume" not in str(err.value)                 # predict has no --resume
