"""Fault injection: corrupt inputs for every file minicnn reads, full disks, read-only folders, and
``kill -9`` in the middle of every kind of write.

What must hold: a corrupt input is refused with an error that names the file (never a traceback
from deep inside, never a huge allocation, never code run from it); a failed or killed write
leaves the previous version of the file intact, and the next run removes its temporary file.
"""
import csv
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import faults
import numpy as np
import pytest

from minicnn import backend, checkpoint, predict, train, training
from minicnn.data import DataError, read_idx
from minicnn.data import download as dl


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


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"\x93NUMPY\x01\x00", b"\x80\x04K\x01."],
                         ids=["text", "npy", "pickle"])
def test_a_file_that_is_no_npz_is_not_a_checkpoint_and_pickle_is_never_suggested(tmp_path, content):
    path = tmp_path / "passwd"
    path.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(path)
    message = str(err.value)
    assert message.startswith(f"checkpoint {path}: not a minicnn checkpoint (not an .npz file"), message
    assert "pickle" not in message and "allow_pickle" not in message


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


# --------------------------------------------------------------------------- predict: corrupt images and checkpoints

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width, height):
    """A 40-byte PNG announcing width x height grey pixels (a decompression bomb's first bytes)."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def lenet_checkpoint(tmp_path_factory):
    """A training checkpoint of an untrained LeNet-5 (no dataset needed): what predict reads."""
    config = train.resolve_config(train.make_parser().parse_args(["lenet5"]))
    config["device"] = "cpu"
    model = training.build_model(config)
    path = tmp_path_factory.mktemp("ckpt") / "last.npz"
    checkpoint.save(path, {"model": model.state_dict(), "config": config, "epoch": 0})
    return path


def test_predict_reports_each_unreadable_image_in_one_line_and_classifies_the_others(lenet_checkpoint, tmp_path,
                                                                                     monkeypatch, capsys):
    Image = pytest.importorskip("PIL.Image")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINICNN_DEBUG", raising=False)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit).save("good.png")
    Path("bomb.png").write_bytes(png_header_only(20000, 20000))       # 400 million pixels, 40 bytes
    Image.fromarray(np.zeros((40, 40), np.uint8)).save("over-limit.png")
    Image.fromarray(np.zeros((50, 50), np.uint8)).save("far-over-limit.png")
    Path("cut.png").write_bytes(Path("good.png").read_bytes()[:60])
    Path("notes.txt").write_text("not an image")
    Path("empty.png").write_bytes(b"")
    Path("folder.png").mkdir()
    bad = ["bomb.png", "over-limit.png", "far-over-limit.png", "cut.png", "notes.txt", "empty.png", "folder.png",
           "missing.png"]
    code = predict.run([str(lenet_checkpoint), "good.png", *bad[:1]] + ["--topk", "2"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert err == ("python -m minicnn.predict: error: cannot read image bomb.png: it is too large to decode "
                   "safely (Image size (400000000 pixels) exceeds limit of 178956970 pixels, could be "
                   "decompression bomb DOS attack.); shrink it first\n")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)     # 40x40 draws Pillow's warning, 50x50 its error
    code = predict.run([str(lenet_checkpoint), "good.png", *bad, "good.png"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err and out.count("\ngood.png (28x28, grey)") == 2
    lines = err.splitlines()
    assert [line.split(": ")[2] for line in lines] == [f"cannot read image {name}" for name in bad]
    assert all(line.startswith("python -m minicnn.predict: error: ") for line in lines)
    assert "too large to decode safely" in lines[1] and "too large to decode safely" in lines[2]
    assert "No such file or directory" in lines[-1]


def test_predict_reports_a_bad_checkpoint_in_one_line_without_resume_advice(lenet_checkpoint, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    image = str(tmp_path / "x.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    data = lenet_checkpoint.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    state = checkpoint.load(lenet_checkpoint)
    checkpoint.save(tmp_path / "no-arch.npz", dict(state, config={k: v for k, v in state["config"].items()
                                                                  if k != "arch"}))
    checkpoint.save(tmp_path / "wrong-weights.npz", dict(state, model={"c1.weight": np.zeros((2, 2), np.float32)}))
    checkpoint.save(tmp_path / "unknown-arch.npz", dict(state, config=dict(state["config"], arch="lenet9")))
    for name, problem in [("cut.npz", "damaged"), ("nowhere.npz", "no such file"), ("no-arch.npz", "lacks 'arch'"),
                          ("wrong-weights.npz", "do not fit"), ("unknown-arch.npz", "unknown architecture")]:
        code = predict.run([str(tmp_path / name), image])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1, err
        assert err.startswith("python -m minicnn.predict: error: checkpoint ") and problem in err, err
        assert name in err and "--resume" not in err and "Traceback" not in err
    if not backend.cuda_available():
        assert predict.run([str(lenet_checkpoint), image, "--device", "cuda"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("python -m minicnn.predict: error: device 'cuda' is not available") and \
            err.count("\n") == 1


# --------------------------------------------------------------------------- full disk, read-only folder

TINY = ["lenet5", "--limit-train", "128", "--limit-test", "64", "--epochs", "2", "--batch-size", "64", "--lr", "0.005",
        "--warmup-epochs", "0", "--augment", "none", "--seed", "0", "--no-progress", "--out", "run"]


def temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def history(run_dir):
    """The metrics of each epoch of a run, without the timings."""
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return [{k: float(v) for k, v in row.items() if k not in ("seconds", "images_per_s")}
                for row in csv.DictReader(f)]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch, mnist_dir):
    """Work in tmp_path, with the real data and no MINICNN_DEBUG."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINICNN_DATA", os.path.dirname(mnist_dir))
    monkeypatch.delenv("MINICNN_DEBUG", raising=False)
    return tmp_path


@pytest.mark.parametrize("name, n, kept", [
    ("config.json", 1, []),                                        # the first write of a run
    ("last.npz", 2, ["best.npz", "config.json", "last.npz", "metrics.csv"]),   # after epoch 1: epoch 0's stays
    ("metrics.csv", 2, ["best.npz", "config.json", "last.npz", "metrics.csv"]),
])
def test_a_full_disk_is_one_line_exit_1_and_keeps_every_file_written(in_tmp, monkeypatch, capsys, name, n, kept):
    with monkeypatch.context() as m:
        faults.install(f"enospc-write:{name}:{n}", m.setattr)
        assert train.run(TINY) == 1
    err = capsys.readouterr().err
    how = "then continue with: python -m minicnn.train lenet5 --resume run." if kept else "then start the run again."
    assert err == (f"python -m minicnn.train: error: cannot write the run's files: {os.path.join('run', name)}: "
                   f"No space left on device (the disk is full: free some space). The files already written in run "
                   f"are intact; fix that, {how}\n")
    assert sorted(os.listdir("run")) == kept                      # no temporary file left either
    if name == "last.npz":
        assert checkpoint.load("run/last.npz")["epoch"] == 0 and checkpoint.load("run/best.npz")["epoch"] == 1
        assert train.run(["--resume", "run", "--no-progress"]) == 0     # as the message says
        assert [row["epoch"] for row in history("run")] == [1, 2]


def test_a_read_only_out_folder_is_one_line_exit_1(in_tmp, monkeypatch, capsys):
    os.mkdir("ro")
    with monkeypatch.context() as m:
        faults.install("readonly:ro", m.setattr)
        assert train.run(TINY[:-1] + ["ro/run"]) == 1
        err = capsys.readouterr().err
        assert err == (f"python -m minicnn.train: error: cannot create the run folder: {in_tmp / 'ro' / 'run'}: "
                       "Read-only file system (the file system is read-only: choose a writable folder). "
                       "Choose another --out.\n")
        assert train.run(TINY[:-1] + ["ro"]) == 1                # an existing folder that cannot be written
        err = capsys.readouterr().err
        assert err.startswith(f"python -m minicnn.train: error: cannot write the run's files: "
                              f"{os.path.join('ro', 'config.json')}: Read-only file system") and err.count("\n") == 1
    assert os.listdir("ro") == []


@pytest.mark.parametrize("change, problem", [
    (lambda c: c.pop("arch"), "it lacks arch"),
    (lambda c: c.update(arch="lenet9"), "unknown architecture 'lenet9'"),
    (lambda c: c.update(dataset="imagenet"), "unknown dataset 'imagenet'"),
    (lambda c: c.update(schedule="multistep", milestones=[2, 1]), "--milestones: must be increasing"),
    (lambda c: c.update(model_options={"c3_table": "yes"}), "option c3_table takes true or false"),
], ids=["no-arch", "unknown-arch", "unknown-dataset", "milestones", "model-option"])
def test_resuming_a_checkpoint_whose_config_is_damaged_is_one_line_exit_1(in_tmp, tiny_reference, capsys, change,
                                                                          problem):
    state = checkpoint.load(tiny_reference[0] / "last.npz")
    change(state["config"])
    checkpoint.save("last.npz", state)
    assert train.run(["--resume", "last.npz", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m minicnn.train: error: checkpoint last.npz: its config does not describe a run "
                          "minicnn can continue: ") and problem in err and err.count("\n") == 1, err
    assert os.listdir(".") == ["last.npz"]


# --------------------------------------------------------------------------- kill -9 during every kind of write

FAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faults.py")
REPO = os.path.dirname(os.path.dirname(FAULTS))


def run_with_fault(fault, args, cwd, how="-m", target="minicnn.train"):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, FAULTS, fault, how, target, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory, mnist_dir):
    """The TINY run, uninterrupted."""
    cwd = tmp_path_factory.mktemp("reference")
    env = dict(os.environ, PYTHONPATH=REPO, MINICNN_DATA=os.path.dirname(mnist_dir))
    proc = subprocess.run([sys.executable, "-m", "minicnn.train", *TINY], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return cwd / "run", history(cwd / "run")


@pytest.mark.parametrize("name, n, before", [
    ("config.json", 1, []),                                                   # the very first write
    ("last.npz", 1, ["config.json", "metrics.csv"]),                          # the initial weights
    ("best.npz", 1, ["config.json", "last.npz", "metrics.csv"]),              # after epoch 1
    ("last.npz", 2, ["best.npz", "config.json", "last.npz", "metrics.csv"]),
    ("metrics.csv", 2, ["best.npz", "config.json", "last.npz", "metrics.csv"]),
    ("curves.png", 1, ["best.npz", "config.json", "last.npz", "metrics.csv"]),
], ids=["config.json", "initial-last.npz", "best.npz", "last.npz", "metrics.csv", "curves.png"])
def test_kill_9_inside_a_write_keeps_the_old_file_and_the_next_run_cleans_up(in_tmp, tiny_reference, name, n,
                                                                             before):
    proc = run_with_fault(f"kill-write:{name}:{n}", TINY, in_tmp)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = temporaries("run")
    assert len(left) == 1 and left[0].startswith(f".{name}.") and left[0].endswith(".tmp")    # half written
    assert sorted(f for f in os.listdir("run") if not f.endswith(".tmp")) == before           # old versions only
    if "last.npz" in before:
        assert checkpoint.load("run/last.npz")["epoch"] == (1 if name in ("metrics.csv", "curves.png") else 0)
    again = TINY if "last.npz" not in before else ["--resume", "run", "--no-progress"]
    assert train.run(again) == 0
    assert temporaries("run") == []                               # the killed write's file was removed
    got, want = history("run"), tiny_reference[1]
    assert len(got) == len(want)
    for row, ref in zip(got, want):                  # (pytest >= 9.2's approx takes no list of dicts)
        assert row.keys() == ref.keys() and all(row[k] == pytest.approx(ref[k], rel=1e-5) for k in ref), (row, ref)
    assert checkpoint.load("run/last.npz")["epoch"] == 2


def test_kill_9_inside_a_download_and_the_next_look_up_cleans_up(tmp_path, monkeypatch):
    payload = os.urandom(300_000)
    md5 = hashlib.md5(payload).hexdigest()
    www = tmp_path / "www" / "fake"
    www.mkdir(parents=True)
    (www / "data.bin").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/fake/"
        target = tmp_path / "root" / "fake" / "data.bin"
        code = f"from minicnn.data import download; download.download_url({base + 'data.bin'!r}, {str(target)!r}, " \
               f"md5={md5!r}, progress=False)"
        proc = run_with_fault("kill-write:data.bin:1", [], tmp_path, how="-c", target=code)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert not target.exists() and len(temporaries(target.parent)) == 1
        monkeypatch.setitem(dl.RESOURCES, "fake", {"folder": "fake", "files": {"data.bin": md5}})
        monkeypatch.setenv("MINICNN_MIRROR", base)
        monkeypatch.delenv("MINICNN_DATA", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        assert dl.find_file("fake", "data.bin", root=tmp_path / "root", progress=False) == str(target)
        assert target.read_bytes() == payload and temporaries(target.parent) == []
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- kill -9 in the other writers

WRITERS = {     # file name -> a program that writes it (each one a different model, so new bytes)
    "w.safetensors": "import minicnn\nfrom minicnn import architectures\n"
                     "minicnn.manual_seed({seed})\n"
                     "minicnn.save_weights(architectures.get('lenet5', num_classes=10), 'w.safetensors')\n",
    "m.onnx": "import minicnn\nfrom minicnn import architectures\n"
              "minicnn.manual_seed({seed})\n"
              "minicnn.onnx.export(architectures.get('lenet5', num_classes=10), minicnn.zeros(1, 1, 32, 32), 'm.onnx')\n",
    "im2col.png": "import sys\nfrom minicnn.visualize import command\n"
                  "sys.argv = ['visualize', 'lenet5', '--kinds', 'im2col', '--im2col', '1,{size},3,1,0', '--out', '.']\n"
                  "command.main()\n",
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_kill_9_inside_a_weights_onnx_or_figure_write_keeps_the_old_file(tmp_path, name):
    """safetensors, ONNX and visualize's figures are written through ``atomic_write`` as checkpoints
    are: a kill -9 halfway through leaves the old file whole and one temporary named after it."""
    pytest.importorskip({"w.safetensors": "safetensors", "m.onnx": "onnx", "im2col.png": "matplotlib"}[name])
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    first = subprocess.run([sys.executable, "-c", WRITERS[name].format(seed=0, size=4)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    old = (tmp_path / name).read_bytes()
    proc = run_with_fault(f"kill-write:{name}:1", [], tmp_path, how="-c", target=WRITERS[name].format(seed=1, size=5))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (tmp_path / name).read_bytes() == old
    left = temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".{name}.") and left[0].endswith(".tmp"), left
