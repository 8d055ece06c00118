"""minicnn.exercises: the textbook solutions pass every stage, the stubs fail with "not implemented yet", start never
overwrites, hints and solutions, the worker process's time limit, and the learner's kernels in the engine
(kernels.use(folder), train --kernels)."""
import os
import shutil
import types

import numpy as np
import pytest
from conftest import DATA_ROOT

import minicnn
import minicnn.functional as F
from minicnn import architectures, exercises, kernels, train
from minicnn.exercises.__main__ import run as command
from minicnn.kernels import learner

HERE = os.path.dirname(os.path.abspath(__file__))
SOLUTIONS = os.path.join(HERE, "solutions")
REPO = os.path.dirname(os.path.dirname(HERE))

#: SHARED-API.md: the names and the tutorial's order (the tutorial on another branch names them).
ORDER = ["numerical_derivative", "mul_broadcast", "tanh_function", "topological_backward", "im2col", "conv2d_forward",
         "conv2d_backward", "relu", "max_pool", "avg_pool_backward", "batch_norm", "dropout", "linear",
         "softmax_cross_entropy", "sgd_momentum"]


def test_the_exercises_are_the_agreed_fifteen_in_the_tutorials_order():
    assert exercises.NAMES == ORDER
    assert [e.chapter for e in exercises.EXERCISES] == [1] * 4 + [2] * 3 + [3] * 5 + [4] * 3


@pytest.mark.parametrize("name", ORDER)
def test_the_textbook_solution_passes_every_stage(name):
    result = exercises.check_file(name, SOLUTIONS)
    stages = [n for n, _ in exercises.get(name).stages]
    assert result.passed, result.line()
    assert result.stage == len(stages) >= 3 and stages == list(range(1, len(stages) + 1))


def test_every_backward_has_a_finite_difference_stage():
    without = {e.name for e in exercises.EXERCISES if len(e.stages) < 4}
    assert without == {"numerical_derivative", "topological_backward", "im2col", "conv2d_forward", "sgd_momentum"}


def test_the_stubs_fail_with_not_implemented_yet(tmp_path):
    for name in ORDER:
        exercises.start(name, str(tmp_path))
    shutil.copy(os.path.join(SOLUTIONS, "im2col.py"), tmp_path / "solved_im2col.py")    # not an exercise's file
    for name in ORDER:
        result = exercises.check_file(name, str(tmp_path))
        assert (result.passed, result.stage) == (False, 1), result.line()
        assert result.message.startswith("not implemented yet:") and "\n" not in result.message, result.line()
    # conv2d_forward on a stub im2col names the exercise to do first
    shutil.copy(os.path.join(SOLUTIONS, "conv2d_forward.py"), tmp_path)
    message = exercises.check_file("conv2d_forward", str(tmp_path)).message
    assert message.startswith("not implemented yet: im2col (im2col.py), which your conv2d_forward calls"), message
    os.remove(tmp_path / "im2col.py")
    message = exercises.check_file("conv2d_forward", str(tmp_path)).message
    assert "there is no im2col.py" in message and "start im2col" in message, message


def test_start_never_overwrites(tmp_path, capsys):
    path = tmp_path / "relu.py"
    path.write_text("# my work\n")
    with pytest.raises(FileExistsError):
        exercises.start("relu", str(tmp_path))
    assert command(["start", "relu", "--dir", str(tmp_path)]) == 1
    assert path.read_text() == "# my work\n"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists; it was left as it is" in err[0]
    assert command(["start", "linear", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "linear.py").read_text() == exercises.get("linear").stub


def test_an_unknown_exercise_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        command(["hint", "im2co"])
    assert exit_.value.code == 2
    assert "unknown exercise 'im2co' (did you mean im2col?)" in capsys.readouterr().err


def test_hints_come_one_at_a_time(tmp_path):
    hints = exercises.get("conv2d_backward").hints
    got = [exercises.hint("conv2d_backward", str(tmp_path)) for _ in range(len(hints) + 1)]
    assert [g.split(":")[0] for g in got] == [f"hint {i} of {len(hints)}" for i in range(1, len(hints) + 1)] + \
        [f"hint {len(hints)} of {len(hints)}"]
    assert got[0].endswith(hints[0]) and exercises.hint("relu", str(tmp_path)).startswith("hint 1 of")


def test_solution_names_the_textbook_lines_read_from_the_source(capsys):
    places = exercises.solution("conv2d_backward")
    text = open(os.path.join(REPO, "minicnn", "kernels", "textbook.py")).read().splitlines()
    for place, name in zip(places, ["col2im", "conv2d_backward"]):
        assert place.path == os.path.join("minicnn", "kernels", "textbook.py")
        assert text[place.first - 1].startswith(f"def {name}(")
        assert text[place.last] == "" and text[place.last - 1].strip()          # the function's last line
    assert command(["solution", "conv2d_backward"]) == 0
    out = capsys.readouterr().out
    assert f"minicnn/kernels/textbook.py, lines {places[1].first}-{places[1].last}: conv2d_backward" in out
    assert "def conv2d_backward" not in out
    assert command(["solution", "sgd_momentum", "--show"]) == 0
    assert "def _update(self, p, grad, state, group):" in capsys.readouterr().out


def test_a_hang_a_crash_and_sys_exit_are_one_line_each(tmp_path, capsys):
    (tmp_path / "relu.py").write_text("def relu_forward(x):\n    while True:\n        pass\n\n\n"
                                      "def relu_backward(grad, cache):\n    return grad\n")
    (tmp_path / "linear.py").write_text("import os\n\n\ndef linear_forward(x, weight, bias):\n    os._exit(3)\n\n\n"
                                        "def linear_backward(grad, x, weight):\n    pass\n")
    (tmp_path / "dropout.py").write_text("import sys\n\n\ndef dropout_forward(x, p, training, rng):\n    sys.exit(1)\n\n\n"
                                         "def dropout_backward(grad, mask):\n    pass\n")
    code = command(["check", "linear", "relu", "--timeout", "4", "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    linear, relu, total = out.splitlines()
    assert (code, total) == (1, "0 of 2 passing"), out
    assert "the checker's process exited with status 3 while running your code at stage 1" in linear
    assert relu == ("relu: failing at stage 1 (signature, shapes, dtypes, inputs left unmodified): timed out "
                    "after 4 s at stage 1: an infinite loop? (the limit is --timeout)")
    dropout = exercises.check_file("dropout", str(tmp_path))          # in this process: SystemExit is caught
    assert dropout.message == "your code called sys.exit(1): return a value instead"


def test_the_command_lists_the_stubs_then_checks_the_solutions(tmp_path, capsys):
    """The command as a learner runs it (each in a worker process): every stub is "not implemented yet"; with the
    textbook solutions pasted in, every exercise passes and check exits 0."""
    for name in ORDER:
        exercises.start(name, str(tmp_path))
    assert command(["list", "--dir", str(tmp_path)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 15 and all(" not implemented yet " in line for line in listed), listed
    for name in ORDER:
        shutil.copy(os.path.join(SOLUTIONS, name + ".py"), tmp_path)
    assert command(["check", "--dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "15 of 15 passing" and len(lines) == 16


# --------------------------------------------------------------------------- the learner's kernels in the engine

def _lenet_step(x, y):
    minicnn.manual_seed(0)
    model = architectures.get("lenet5")
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return float(loss.item()), [p.grad.numpy().copy() for p in model.parameters()]


def test_kernels_use_a_folder_runs_lenet5_on_the_learners_kernels(tmp_path):
    x = minicnn.tensor(np.random.default_rng(0).normal(size=(4, 1, 32, 32)).astype(np.float32))
    y = minicnn.tensor([1, 2, 3, 4])
    with kernels.use("textbook"):
        loss, grads = _lenet_step(x, y)
    with kernels.use(SOLUTIONS) as switch:
        assert kernels.mode() == "learner" and switch.kernels.describe().startswith(
            f"kernels from {SOLUTIONS}: 11 of 11 exercise kernels are yours")
        mine_loss, mine = _lenet_step(x, y)
    assert kernels.mode() != "learner"
    assert mine_loss == pytest.approx(loss, rel=1e-6)
    for a, b in zip(mine, grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # what the learner wrote is used as it is: a wrong linear backward changes the gradients
    wrong = open(os.path.join(SOLUTIONS, "linear.py")).read().replace("grad.T @ x", "2 * grad.T @ x")
    (tmp_path / "linear.py").write_text(wrong)
    exercises.start("relu", str(tmp_path))                       # a stub: not the learner's kernel yet
    exercises.start("im2col", str(tmp_path))                     # conv2d_forward calls it: not the learner's either
    shutil.copy(os.path.join(SOLUTIONS, "conv2d_forward.py"), tmp_path)
    with kernels.use(str(tmp_path)) as switch:
        text = switch.kernels.describe()
        _, wrong_grads = _lenet_step(x, y)
    assert "1 of 11 exercise kernels are yours" in text and "(linear.py)" in text and "relu" in text.splitlines()[-1]
    np.testing.assert_allclose(wrong_grads[-2], 2 * grads[-2], rtol=1e-4, atol=1e-6)    # f7.weight
    np.testing.assert_allclose(wrong_grads[-1], grads[-1], rtol=1e-4, atol=1e-6)


def test_kernels_use_a_module_and_refuses_what_is_neither():
    module = learner.load_file(os.path.join(SOLUTIONS, "relu.py"))
    with kernels.use(module) as switch:
        assert sorted(switch.kernels.mine) == ["relu"]
        x = minicnn.tensor(np.array([[-1.0, 2.0]], np.float32), requires_grad=True)
        F.relu(x).sum().backward()
        assert x.grad.tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError, match="expected 'fast' or 'textbook', got 'nowhere' \\(nor is it a folder of "
                                         "exercise files or a module\\)"):
        kernels.use("nowhere")


def test_optim_sgd_steps_with_the_learners_sgd_step():
    calls = []
    solution = learner.load_file(os.path.join(SOLUTIONS, "sgd_momentum.py"))

    def sgd_step(param, grad, buf, lr, momentum, weight_decay):
        calls.append(lr)
        return solution.sgd_step(param, grad, buf, lr, momentum, weight_decay)
    module = types.ModuleType("mine")
    module.sgd_step = sgd_step
    finals = []
    for kernel_set in ("textbook", module):          # one switch at a time: use() switches when called
        with kernels.use(kernel_set):
            p = minicnn.nn.Parameter(minicnn.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3)))
            opt = minicnn.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
            for lr in (0.1, 0.05):
                opt.param_groups[0]["lr"] = lr
                p.grad = minicnn.tensor(np.ones((2, 3), np.float32))
                opt.step()
            finals.append(p.numpy().copy())
    assert calls == [0.1, 0.05]
    np.testing.assert_allclose(finals[1], finals[0], rtol=1e-6)


def test_train_with_kernels_matches_textbook_mode(tmp_path, mnist_dir, capsys, monkeypatch):
    """train --kernels DIR, the textbook solutions in DIR, gives textbook mode's metrics after a short epoch."""
    folder = tmp_path / "mine"
    shutil.copytree(SOLUTIONS, folder)
    monkeypatch.setenv("MINICNN_DATA", DATA_ROOT)
    monkeypatch.setattr(train, "plot_curves", lambda *args: None)   # matplotlib's figure: seconds, and not the point
    args = ["lenet5", "--epochs", "1", "--limit-train", "640", "--limit-test", "200", "--threads", "1", "--batch-size",
            "32", "--lr", "0.005", "--warmup-epochs", "0", "--augment", "none", "--no-progress"]
    assert train.run([*args, "--kernels", str(folder), "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().out.startswith(f"kernels from {folder}: 11 of 11 exercise kernels are yours\n")
    assert kernels.mode() != "learner"                               # the run's switch is undone
    with kernels.use("textbook"):
        assert train.run([*args, "--out", str(tmp_path / "b")]) == 0
    rows = [[float(v) for v in open(tmp_path / run / "metrics.csv").read().splitlines()[1].split(",")[:6]]
            for run in ("a", "b")]
    assert rows[0] == pytest.approx(rows[1], rel=1e-5)        # the same sums in another order: last digits differ
    assert float(rows[0][5]) > 0.15                                  # 20 steps: it begins to learn (chance: 0.1)


def test_train_kernels_names_a_missing_folder_and_a_broken_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.run(["lenet5", "--kernels", str(tmp_path / "nowhere")])
    assert exit_.value.code == 2 and "nowhere does not exist" in capsys.readouterr().err
    (tmp_path / "linear.py").write_text("def linear_forward(:\n")
    with pytest.raises(ValueError, match="linear.py does not load: SyntaxError"):
        kernels.use(str(tmp_path))
