"""Fault injection: corrupt inputs for every file minicnn reads, full disks, read-only folders, and
``kill -9`` in the middle of every kind of write.

What must hold: a corrupt input is refused with an error that names the file (never a traceback
from deep inside, never a huge allocation, never code run from it); a failed or killed write
leaves the previous version of the file intact, and the next run removes its temporary file.
"""
import gzip
import io
import json
import os
import re
import struct
import zipfile

import numpy as np
import pytest

from minicnn import checkpoint
from minicnn.data import DataError, read_idx


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


# --------------------------------------------------------------------------- corrupt IDX files

def idx_bytes(array):
    """An unsigned-byte IDX file holding ``array``."""
    array = np.asarray(array, np.uint8)
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_read_idx_reads_gzipped_and_plain_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(images))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(images)))
    for name in ("a.idx", "a.idx.gz"):
        np.testing.assert_array_equal(read_idx(str(tmp_path / name)), images)


CORRUPT_IDX = [
    ("bad-magic.idx", b"\x00\x00\x0d\x01\x00\x00\x00\x02ab", "not an unsigned-byte IDX file"),
    ("short-header.idx", b"\x00\x00\x08\x03\x00\x00", "truncated in its header"),
    ("short-data.idx", idx_bytes(np.zeros((4, 5)))[:-3], "truncated, expected 20 bytes of data, got 17"),
    ("extra.idx", idx_bytes(np.zeros((4, 5))) + b"!", "extra bytes after the"),
    ("huge.idx", b"\x00\x00\x08\x03" + struct.pack(">3I", 60000, 60000, 60000), "declares a 60000x60000x60000 array"),
    ("huge.idx.gz", gzip.compress(b"\x00\x00\x08\x02" + struct.pack(">2I", 10 ** 9, 10 ** 9)), "more data than"),
    ("not-gzip.idx.gz", b"plain text, not gzip", "cannot be read"),
    ("cut-gzip.idx.gz", gzip.compress(idx_bytes(np.ones((50, 50))))[:-30], "cannot be read"),
    ("empty.idx", b"", "not an unsigned-byte IDX file"),
]


@pytest.mark.parametrize("name, content, problem", CORRUPT_IDX, ids=[case[0] for case in CORRUPT_IDX])
def test_corrupt_idx_files_are_refused_naming_the_file(tmp_path, name, content, problem):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=re.escape(str(tmp_path / name)) + ".*" + re.escape(problem)):
        read_idx(str(tmp_path / name))
