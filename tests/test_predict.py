"""``python -m minicnn.predict``: classify PNG files with a model trained for a few seconds on MNIST."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA_ROOT

from minicnn import predict, train
from minicnn.data import pipeline
from minicnn.data import MNIST

PIL = pytest.importorskip("PIL.Image")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = DATA_ROOT

ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+([\d.]+)%$")


def cli(args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), MINICNN_DATA=DATA)
    return subprocess.run([sys.executable, "-m", "minicnn.predict", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def rows(stdout):
    """The (rank, class, probability) rows of each image, in order."""
    blocks, current = [], None
    for line in stdout.splitlines():
        if line.startswith("  ") and "rank" in line:
            current = []
            blocks.append(current)
        elif (m := ROW.match(line)) and current is not None:
            current.append((int(m[1]), m[2], float(m[3])))
    return blocks


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, mnist_dir):
    """A LeNet-5 trained in-process for 2 epochs on 2000 MNIST images (about 85% test accuracy)."""
    out = tmp_path_factory.mktemp("predict") / "run"
    code = train.run(["lenet5", "--limit-train", "2000", "--limit-test", "200", "--epochs", "2",
                      "--batch-size", "32", "--lr", "0.005", "--warmup-epochs", "0", "--augment", "none",
                      "--no-progress",
                      "--data-dir", DATA, "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def digits(mnist_dir):
    ds = MNIST(root=DATA, train=False)
    return ds.data[:8], ds.targets[:8]


def expected_probs(run_dir, images):
    """Probabilities through the training pipeline's own test transform (no PNG, no Pillow)."""
    model, config, _, _ = predict.load_model(str(run_dir))
    x = pipeline.make_transform(config, train=False)(images)
    return predict.predict(model, x)


def test_help():
    proc = cli(["--help"], REPO)
    assert proc.returncode == 0
    for word in ["RUN_DIR_OR_CHECKPOINT", "--topk", "--invert", "--device", "invert"]:
        assert word in proc.stdout


def test_png_of_mnist_digits_gives_the_models_classes(run_dir, digits, tmp_path):
    images, labels = digits
    paths = []
    for i, img in enumerate(images):
        paths.append(str(tmp_path / f"digit{i}.png"))
        PIL.fromarray(img[0], mode="L").save(paths[-1])
    proc = cli([str(run_dir), *paths, "--topk", "3"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "lenet5 trained on mnist" in proc.stdout and "best.npz" in proc.stdout
    blocks = rows(proc.stdout)
    assert len(blocks) == len(paths) and all(len(b) == 3 for b in blocks)
    probs = expected_probs(run_dir, images)
    top1 = [int(b[0][1]) for b in blocks]
    assert top1 == probs.argmax(axis=1).tolist()            # the PNG path = the test-set path
    assert [b[0][2] for b in blocks] == pytest.approx(100 * probs.max(axis=1), abs=0.006)
    assert sum(t == y for t, y in zip(top1, labels)) >= 5, (top1, labels)   # trained to ~85%: most are right
    for b in blocks:
        assert [r[0] for r in b] == [1, 2, 3] and b[0][2] >= b[1][2] >= b[2][2]


def test_dark_on_white_and_colour_images_are_converted(run_dir, digits, tmp_path):
    images, _ = digits
    img = images[0, 0]
    PIL.fromarray(img, mode="L").save(tmp_path / "plain.png")
    PIL.fromarray(255 - img, mode="L").save(tmp_path / "paper.png")                 # black ink on white
    rgb = np.stack([255 - img] * 3, axis=-1)
    PIL.fromarray(rgb, mode="RGB").resize((112, 112)).save(tmp_path / "big_rgb.png")
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = img                                       # black strokes on a transparent background
    PIL.fromarray(rgba, mode="RGBA").save(tmp_path / "transparent.png")
    proc = cli([str(run_dir / "last.npz"), "plain.png", "paper.png", "big_rgb.png", "transparent.png",
                "--topk", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    blocks = rows(proc.stdout)
    assert len({b[0][1] for b in blocks}) == 1, proc.stdout   # all four are the same digit
    assert blocks[0][0][2] == blocks[1][0][2]                 # inverting back is exact
    assert proc.stdout.count("inverted") == 3                 # all but the plain MNIST-style one
    proc = cli([str(run_dir), "paper.png", "--invert", "no", "--topk", "2"], tmp_path)
    assert proc.returncode == 0 and "inverted" not in proc.stdout and len(rows(proc.stdout)[0]) == 2


def test_errors_are_clear(run_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    proc = cli([str(run_dir), "missing.png", "notes.txt"], tmp_path)
    assert proc.returncode == 1
    assert "cannot read image missing.png" in proc.stderr and "cannot read image notes.txt" in proc.stderr
    proc = cli([str(tmp_path / "nowhere.npz"), "x.png"], tmp_path)
    assert proc.returncode == 1 and "no such file" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli([str(tmp_path), "x.png"], tmp_path)
    assert proc.returncode == 1 and "no best.npz or last.npz" in proc.stderr


def test_inversion_heuristic():
    white = np.full((1, 28, 28), 255, np.uint8)
    white[0, 10:18, 12:16] = 0
    assert predict.should_invert(white)
    assert not predict.should_invert(255 - white)


def test_without_pillow_predict_says_so_in_one_line_before_loading_anything(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)                  # import PIL fails, as where it is missing
    assert predict.run([str(tmp_path / "no-such.npz"), "digit.png"]) == 1
    assert capsys.readouterr().err == ("python -m minicnn.predict: error: reading images needs Pillow: "
                                       "pip install Pillow (or pip install -e '.[image]')\n")
