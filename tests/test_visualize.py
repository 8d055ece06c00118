"""``minicnn.visualize``: each figure kind drawn from a tiny model, the numbers behind them, and the CLI's
error policy (one line, exit 2 before anything is written / exit 1, ``--debug`` for the traceback)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA_ROOT, needs_mnist

import minicnn
from minicnn import architectures, checkpoint
from minicnn import visualize as V
from minicnn.visualize import command

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = dict(arch="lenet5", dataset="mnist", num_classes=10, in_channels=1, image_size=28, input_size=32,
              mean=[0.1307], std=[0.3081], model_options={}, classes=[str(d) for d in range(10)])


def png_size(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as img:
        return img.size


@pytest.fixture
def digits():
    """Eight 28x28 uint8 'digits': a bright bar at a different place in each (no dataset needed)."""
    images = np.zeros((8, 1, 28, 28), np.uint8)
    for k in range(8):
        images[k, 0, 4 + 2 * k:8 + 2 * k, 6:22] = 255
    return images, np.arange(8) % 10


@pytest.fixture
def model():
    minicnn.manual_seed(0)
    return V.build(CONFIG).eval()


def test_prepare_pads_mnist_to_32_and_normalises_like_training(digits):
    x = V.prepare(digits[0], CONFIG)
    assert x.shape == (8, 1, 32, 32) and x.dtype == np.float32
    background = (0 - 0.1307) / 0.3081
    np.testing.assert_allclose(x[:, :, :2], background, rtol=1e-6)            # the 2-pixel border is background
    np.testing.assert_allclose(x[0, 0, 2 + 4, 2 + 6], (1 - 0.1307) / 0.3081, rtol=1e-6)


def test_stages_of_lenet5_merge_the_activation_and_skip_1x1_maps(model, digits):
    stages = V.stage_outputs(model, V.prepare(digits[0][:2], CONFIG))
    assert [(label, out.shape) for label, out in stages] == [
        ("c1+act", (2, 6, 28, 28)), ("s2+act", (2, 6, 14, 14)), ("c3+act", (2, 16, 10, 10)), ("s4+act", (2, 16, 5, 5))]
    assert np.abs(stages[0][1]).max() <= 1.7159 + 1e-6          # after the scaled tanh
    assert "forward" not in vars(model.c1)                       # the wrapped forwards are put back


def test_stages_keep_the_last_of_each_size_when_there_are_too_many():
    minicnn.manual_seed(0)
    net = architectures.get("resnet18", num_classes=10, in_channels=1).eval()
    stages = V.stage_outputs(net, np.zeros((1, 1, 64, 64), np.float32))
    assert [label for label, _ in stages] == ["conv1+bn1+relu", "layer1.1", "layer2.1", "layer3.1", "layer4.1"]
    assert [out.shape[1:] for _, out in stages] == [(64, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]

    small = architectures.get("resnet18", num_classes=10, in_channels=1, stem="small").eval()   # no max-pool
    stages = V.stage_outputs(small, np.zeros((1, 1, 16, 16), np.float32))
    assert [(label, out.shape[1:]) for label, out in stages] == [
        ("layer1.1", (64, 16, 16)), ("layer2.1", (128, 8, 8)), ("layer3.1", (256, 4, 4)), ("layer4.1", (512, 2, 2))]


def test_stages_and_saliency_of_the_papers_resnet20():
    minicnn.manual_seed(0)
    net = architectures.get("resnet20", in_channels=1).eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    stages = V.stage_outputs(net, x)
    assert [(label, out.shape[1:]) for label, out in stages] == [
        ("layer1.2", (16, 28, 28)), ("layer2.2", (32, 14, 14)), ("layer3.2", (64, 7, 7))]
    maps, pred, probs = V.saliency(net, x)        # the gradient flows back through the option-A shortcuts
    assert maps.shape == (2, 28, 28) and maps.max() > 0 and pred.shape == (2,) and np.allclose(probs.sum(1), 1)


def test_saliency_is_the_input_gradient_of_the_predicted_score(model, digits):
    x = V.prepare(digits[0][:2], CONFIG)
    maps, pred, probs = V.saliency(model, x)
    assert maps.shape == (2, 32, 32) and pred.shape == (2,)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    i, j = 16, 14                                                # a central pixel: finite difference of the score
    h = 1e-2
    bumped = [x.copy(), x.copy()]
    bumped[0][0, 0, i, j] += h
    bumped[1][0, 0, i, j] -= h
    with minicnn.no_grad():
        up, down = (model(minicnn.tensor(b)).numpy()[0, pred[0]] for b in bumped)
    assert maps[0, i, j] == pytest.approx(abs(up - down) / (2 * h), rel=2e-2, abs=1e-4)
    assert V.analysis.on_image_grid(maps, CONFIG).shape == (2, 28, 28)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    m = V.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_every_figure_kind_is_drawn_from_a_tiny_model(model, digits, tmp_path):
    images, labels = digits
    x = V.prepare(images, CONFIG)
    name, conv = V.first_conv(model)
    assert name == "c1" and conv.weight.shape == (6, 1, 5, 5)
    maps, pred, probs = V.saliency(model, x[:3])
    stages = V.stage_outputs(model, x[:1])
    all_probs = V.predict(model, x, batch_size=3)
    np.testing.assert_allclose(all_probs[:3], probs, rtol=1e-4, atol=1e-6)
    wrong = np.flatnonzero(all_probs.argmax(1) != labels)
    classes = CONFIG["classes"]
    figs = {
        "filters": V.filters_figure(conv.weight.numpy(), name),
        "features": V.feature_maps_figure(images[0], [(label, out[0]) for label, out in stages]),
        "saliency": V.saliency_figure(images[:3], V.analysis.on_image_grid(maps, CONFIG), pred, probs, labels[:3], classes),
        "confusion": V.confusion_figure(V.confusion_matrix(labels, all_probs.argmax(1), 10), classes),
        "misclassified": V.misclassified_figure(images[wrong], labels[wrong], all_probs.argmax(1)[wrong],
                                                all_probs.max(1)[wrong], classes, len(labels)),
        "im2col": V.im2col_figure(channels=2, size=3, kernel=2, padding=1),
        "rgb-filters": V.filters_figure(np.random.default_rng(0).normal(size=(16, 3, 7, 7)), "conv1"),
        "no-errors": V.misclassified_figure(images[:0], labels[:0], labels[:0], np.zeros(0), classes, 8),
    }
    for kind, fig in figs.items():
        path = V.save(fig, tmp_path / f"{kind}.png")
        width, height = png_size(path)
        assert 200 < width < 1600 and 100 < height < 1200, f"{kind}: {width}x{height}"
        assert os.path.getsize(path) < 150_000
    assert sorted(os.listdir(tmp_path)) == sorted(f"{k}.png" for k in figs)     # no temporary files left


def test_the_im2col_picture_shows_the_textbook_columns():
    fig = V.im2col_figure(channels=1, size=4, kernel=3)
    matrix_axes = fig.axes[-1]
    numbers = [t.get_text() for t in matrix_axes.texts]
    assert len(numbers) == 9 * 4
    rows = np.array(numbers, dtype=int).reshape(9, 4)       # drawn row by row: (c, i, j) x output pixel
    np.testing.assert_array_equal(rows[:, 0], [1, 2, 3, 5, 6, 7, 9, 10, 11])      # the window of output (0, 0)
    np.testing.assert_array_equal(rows[4], [6, 7, 10, 11])                          # the centre of every window
    V.pyplot().close(fig)


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "filters.png"
    target.write_bytes(b"old")
    fig = V.filters_figure(np.ones((2, 1, 3, 3)), "c")

    def broken(f, **kwargs):
        f.write(b"half a png")
        raise OSError(28, "No space left on device")
    fig.savefig = broken
    with pytest.raises(OSError):
        V.save(fig, target)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["filters.png"]


# --------------------------------------------------------------------------- the command line

def cli(args, cwd, env_extra=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), MINICNN_DATA=DATA_ROOT,
               MPLBACKEND="Agg", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "minicnn.visualize", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as the training CLI writes it (an untrained LeNet-5: the figures need no accuracy)."""
    minicnn.manual_seed(0)
    net = V.build(CONFIG)
    folder = tmp_path / "run"
    checkpoint.save(folder / "best.npz", {"model": net.state_dict(), "config": CONFIG, "epoch": 1})
    return folder


@needs_mnist
def test_the_cli_draws_every_kind_from_a_run_folder(run_dir, tmp_path):
    proc = cli([str(run_dir), "--out", "figs", "--prefix", "tiny-", "--limit-test", "50", "--count", "3"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().split("\n")
    assert lines[0] == f"lenet5 from {run_dir}/best.npz, epoch 1; figures into figs"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [f"figs/tiny-{k}.png" for k in command.TRAINED_DEFAULT]
    assert "of 50 right" in lines[4] and "test image 0 through 4 stages: c1+act, s2+act, c3+act, s4+act" in lines[2]
    for kind in command.TRAINED_DEFAULT:
        png_size(tmp_path / "figs" / f"tiny-{kind}.png")


@needs_mnist
def test_an_architecture_name_draws_an_untrained_model(tmp_path):
    proc = cli(["lenet5", "--kinds", "filters,im2col", "--im2col", "2,3,2,1,1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["lenet5, untrained (seed 0); figures into .",
                                           "  ./filters.png: 6 filters of 1x5x5 (c1)",
                                           "  ./im2col.png: a 2x3x3 image, kernel 2, stride 1, padding 1: columns 8 x 16"]


@pytest.mark.parametrize("args,message", [
    (["lenet5", "--kinds", "filters,curves"], "argument --kinds: unknown kind 'curves'; choose from filters,features,saliency,confusion,misclassified,im2col,graph"),
    (["no-such-run"], "no-such-run is not a run folder, a checkpoint file or an architecture name"),
    (["lenet5", "--im2col", "1,4,9,1,0"], "argument --im2col: expected C,SIZE,KERNEL,STRIDE,PADDING"),
    (["lenet5", "--count", "0"], "argument --count: must be a positive integer, got 0"),
    (["lenet5", "--kinds", "features", "--input-size", "8"], "argument --input-size: LeNet5: expected 32x32 images"),
    (["alexnet", "--kinds", "filters", "--input-size", "16"], "argument --input-size: AlexNet: images must be at least 63x63"),
])
def test_usage_errors_are_one_line_exit_2_and_write_nothing(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        command.run(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m minicnn.visualize: error: ") and message in err
    assert os.listdir(tmp_path) == []


def test_run_options_for_a_name_only_are_refused_for_a_run(run_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        command.run([str(run_dir), "--dataset", "fashion-mnist", "--seed", "3"])
    assert exc.value.code == 2
    assert "--dataset, --seed only apply to an architecture name" in capsys.readouterr().err
    assert sorted(os.listdir(run_dir)) == ["best.npz"]


@needs_mnist
def test_an_index_past_the_test_set_is_a_usage_error(run_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        command.run([str(run_dir), "--kinds", "saliency", "--index", "9998", "--data-dir", DATA_ROOT])
    assert exc.value.code == 2
    assert "test image 10003 is needed (--index 9998, --count 6) but the test set has 10,000 images" in capsys.readouterr().err
    assert sorted(os.listdir(run_dir)) == ["best.npz"]


def test_a_corrupt_checkpoint_is_one_line_exit_1_and_debug_adds_the_traceback(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.npz").write_bytes(b"PK\x03\x04 not really a zip")
    proc = cli(["run", "--kinds", "filters"], tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("python -m minicnn.visualize: error: checkpoint run/best.npz")
    debug = cli(["run", "--kinds", "filters", "--debug"], tmp_path)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert sorted(os.listdir(tmp_path / "run")) == ["best.npz"]


def test_without_matplotlib_the_error_names_the_plot_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # import matplotlib -> ImportError
    monkeypatch.chdir(tmp_path)
    assert command.run(["lenet5", "--kinds", "im2col"]) == 1
    err = capsys.readouterr().err
    assert err == ("python -m minicnn.visualize: error: drawing figures needs matplotlib: pip install matplotlib "
                   "(or pip install -e .[plot])\n")
    assert os.listdir(tmp_path) == []


@needs_mnist
def test_an_input_too_small_for_any_feature_map_is_one_line(tmp_path):
    proc = cli(["resnet18", "--kinds", "features", "--input-size", "1"], tmp_path)
    assert proc.returncode == 1 and proc.stderr == (
        "python -m minicnn.visualize: error: resnet18 makes no feature map larger than 1x1 from 1x1 images: "
        "nothing to draw (use a larger --input-size)\n"), proc.stderr
