"""minicnn.training as a library: fit() trains, returns the history, and continues a run exactly."""
import warnings

import numpy as np
import pytest

import minicnn
from minicnn import architectures, checkpoint, optim, training
from minicnn.data import DataLoader


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 1, 32, 32)).astype(np.float32) + 2 * y[:, None, None, None]   # separable
    return x, y


def _setup(init_seed=0):
    minicnn.manual_seed(init_seed)
    model = architectures.get("lenet5", num_classes=3)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    return model, opt, DataLoader(_data(), batch_size=16, shuffle=True, seed=0), DataLoader(_data(48, 1), 48)


def _comparable(history):
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in history]


def test_fit_trains_and_returns_one_row_per_epoch():
    model, opt, train_loader, test_loader = _setup()
    seen = []
    history = training.fit(model, train_loader, opt, 3, test_loader=test_loader, seed=0, progress=False,
                           on_epoch_end=lambda row, hist: seen.append(row["epoch"]))
    assert [r["epoch"] for r in history] == seen == [1, 2, 3]
    assert set(history[0]) == set(training.CSV_COLUMNS)
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["test_acc"] > 0.6


def test_fit_continued_from_a_saved_state_repeats_the_uninterrupted_run():
    model, opt, train_loader, test_loader = _setup()
    whole = training.fit(model, train_loader, opt, 2, test_loader=test_loader, seed=0, progress=False)

    model, opt, train_loader, test_loader = _setup()
    first = training.fit(model, train_loader, opt, 1, test_loader=test_loader, seed=0, progress=False)
    saved = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    model, opt, train_loader, test_loader = _setup(init_seed=5)       # a fresh process, other initial weights
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    resumed = training.fit(model, train_loader, opt, 2, test_loader=test_loader, seed=0, start_epoch=2,
                           history=list(first), progress=False)
    assert _comparable(resumed) == _comparable(whole)


def test_fit_without_a_test_loader_and_googlenets_loss():
    model, opt, train_loader, _ = _setup()
    history = training.fit(model, train_loader, opt, 1, progress=False)
    assert history[0]["test_loss"] is None and history[0]["test_acc"] is None
    logits = minicnn.tensor(np.zeros((2, 3), np.float32))
    aux = minicnn.tensor(np.ones((2, 3), np.float32))
    target = np.array([0, 1])
    loss = training.training_loss((logits, aux, aux), target)
    np.testing.assert_allclose(loss.item(), (1 + 2 * 0.3) * np.log(3), rtol=1e-6)   # main + 0.3 * each aux


def test_a_diverging_fit_raises_nonfinite_loss_without_numpy_warnings():
    model, _, train_loader, _ = _setup()
    opt = optim.AdamW(model.parameters(), lr=1e30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(training.NonFiniteLossError, match="the training loss became nan"):
            training.fit(model, train_loader, opt, 1, seed=0, progress=False)
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


def _dropout_model(init_seed):
    minicnn.manual_seed(init_seed)
    model = minicnn.nn.Sequential(minicnn.nn.Flatten(), minicnn.nn.Linear(1024, 16), minicnn.nn.ReLU(),
                                  minicnn.nn.Dropout(0.5), minicnn.nn.Linear(16, 3))
    return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def test_rng_state_round_trip_resumes_fit_without_a_seed(tmp_path):
    """fit(seed=None) draws its dropout masks from the CPU generator as it stands: a run resumed from a checkpoint
    repeats the uninterrupted one only if rng_state/restore_rng_state carry that generator's state."""
    loader = DataLoader(_data(64), batch_size=16)
    model, opt = _dropout_model(0)
    whole = training.fit(model, loader, opt, 2, progress=False)
    weights = {k: v.copy() for k, v in model.state_dict().items()}

    model, opt = _dropout_model(0)
    first = training.fit(model, loader, opt, 1, progress=False)
    path = tmp_path / "epoch1.npz"
    checkpoint.save(path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                   "rng": training.rng_state("cpu")})
    model, opt = _dropout_model(7)                         # a fresh process: other weights, other draws
    minicnn.randn(100)
    state = checkpoint.load(path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    training.restore_rng_state(state["rng"], "cpu")
    resumed = training.fit(model, loader, opt, 2, start_epoch=2, history=list(first), progress=False)
    assert _comparable(resumed) == _comparable(whole)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, weights[name], err_msg=name)

    state = training.rng_state("cpu")                      # and directly: the same draws after a restore
    draws = minicnn.randn(5).numpy()
    training.restore_rng_state(state, "cpu")
    np.testing.assert_array_equal(minicnn.randn(5).numpy(), draws)
