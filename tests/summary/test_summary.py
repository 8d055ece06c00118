"""minicnn.summary: rows, totals (Keras-style trainable / non-trainable), mult-adds, LeNet-5's
arithmetic check, restoring the model, and the command line."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import architectures as A
from minicnn import nn
from minicnn.summary import LayerRow, ModelSummary, summary

ROOT = Path(__file__).resolve().parents[2]

LENET_ROWS = [   # name, type, output shape, params, mult-adds
    ("c1", "Conv2d", (1, 6, 28, 28), 156, 28 * 28 * 6 * 25),
    ("act", "ScaledTanh", (1, 6, 28, 28), 0, 0),
    ("s2", "Subsampling", (1, 6, 14, 14), 12, 6 * 14 * 14),
    ("act", "ScaledTanh", (1, 6, 14, 14), 0, 0),
    ("c3", "Conv2d", (1, 16, 10, 10), 2_416, 10 * 10 * 16 * 6 * 25),
    ("act", "ScaledTanh", (1, 16, 10, 10), 0, 0),
    ("s4", "Subsampling", (1, 16, 5, 5), 32, 16 * 5 * 5),
    ("act", "ScaledTanh", (1, 16, 5, 5), 0, 0),
    ("c5", "Conv2d", (1, 120, 1, 1), 48_120, 120 * 16 * 25),
    ("act", "ScaledTanh", (1, 120, 1, 1), 0, 0),
    ("flatten", "Flatten", (1, 120), 0, 0),
    ("f6", "Linear", (1, 84), 10_164, 120 * 84),
    ("act", "ScaledTanh", (1, 84), 0, 0),
    ("output", "Linear", (1, 10), 850, 84 * 10),
]


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "minicnn.summary", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


def test_lenet5_rows_and_totals(capsys):
    s = summary(A.get("lenet5"), (1, 32, 32))
    assert [(r.name, r.type, r.output_shape, r.params, r.mult_adds) for r in s.rows] == LENET_ROWS
    assert (s.total_params, s.trainable, s.non_trainable, s.parameters) == (61_750, 61_750, 0, 61_750)
    assert s.mult_adds == sum(row[4] for row in LENET_ROWS) == 418_096
    printed = capsys.readouterr().out
    assert printed.strip() == str(s).strip()
    assert "Total params: 61,750" in printed and "Total mult-adds: 418.10 K (418,096)" in printed
    # the article's arithmetic, checked, with its two wrong figures called out
    assert "C3     16 x (6 x 5x5 + 1)" in printed and "2,416   ok" in printed
    assert "the article says 416: wrong" in printed and "1,516" in printed
    assert "48,120   ok" in printed and "the article says 3,000: wrong" in printed
    assert "MISMATCH" not in printed


def test_lenet5_c3_table():
    s = summary(A.get("lenet5", c3_table=True), (1, 32, 32), verbose=False)
    c3 = next(r for r in s.rows if r.name == "c3")
    assert (c3.type, c3.params, c3.mult_adds) == ("MaskedConv2d", 1_516, 10 * 10 * 60 * 25)
    assert s.total_params == s.parameters == 60_850 and s.masked == 900
    text = str(s)
    assert "60 connections x 5x5 + 16 biases (Table I)" in text and "1,516   ok" in text
    assert "not counting 900 weights fixed at zero" in text and "MISMATCH" not in text


def test_resnet50_totals_and_mult_adds():
    """Keras-style: 25,557,032 trainable (PyTorch's count) + 53,120 BatchNorm running statistics;
    4.09 G mult-adds at 224x224 (torchvision's figure)."""
    model = A.get("resnet50")
    model.train()
    bn = model.layer1[0].bn1
    stats_before = (bn.running_mean.numpy().copy(), bn.num_batches_tracked.numpy().copy())
    s = summary(model, (3, 224, 224), verbose=False)
    assert s.trainable == s.parameters == 25_557_032
    assert s.non_trainable == s.buffers == 53_120          # 2 x 26,560 BatchNorm channels
    assert s.total_params == 25_610_152
    assert s.mult_adds == 4_089_184_256                    # conv + fc, as torchvision's 4.09 GFLOPS
    assert sum(r.params for r in s.rows) == s.total_params
    first, last = s.rows[0], s.rows[-1]
    assert (first.name, first.output_shape, first.params, first.mult_adds) == \
        ("conv1", (1, 64, 112, 112), 9_408, 112 * 112 * 64 * 3 * 49)
    assert (last.name, last.output_shape, last.params, last.mult_adds) == ("fc", (1, 1000), 2_049_000, 2_048_000)
    assert [r.name for r in s.rows].count("layer1.0.relu") == 3          # one shared ReLU, called 3 times
    bn_row = next(r for r in s.rows if r.name == "bn1")
    assert (bn_row.trainable, bn_row.non_trainable) == (128, 128)
    # the model is left as it was: training mode, own forwards, untouched statistics, no gradients
    assert all(m.training for m in model.modules())
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert np.array_equal(bn.running_mean.numpy(), stats_before[0])
    assert np.array_equal(bn.num_batches_tracked.numpy(), stats_before[1])
    assert all(p.grad is None for p in model.parameters())
    text = str(s)
    assert "Total params: 25,610,152" in text and "Trainable params: 25,557,032" in text
    assert "Non-trainable params: 53,120" in text and "4.09 G (4,089,184,256)" in text
    assert "BatchNorm running statistics" in text


def test_googlenet_lists_uncalled_aux_classifiers():
    s = summary(A.get("googlenet"), (3, 64, 64), verbose=False)
    assert s.parameters == 13_004_888
    uncalled = [r for r in s.rows if r.output_shape is None]
    assert {r.name.split(".")[0] for r in uncalled} == {"aux1", "aux2"}
    assert sum(r.params for r in s.rows) == s.total_params
    assert any("aux1, aux2" in note for note in s.notes)
    assert all(r.mult_adds == 0 for r in uncalled)


def test_frozen_parameters_are_non_trainable():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    model[0].requires_grad_(False)
    s = summary(model, (4,), verbose=False)
    assert (s.trainable, s.frozen, s.non_trainable, s.parameters) == (8, 15, 15, 23)
    assert [r.name for r in s.rows] == ["0", "1", "2"]
    assert [r.mult_adds for r in s.rows] == [12, 0, 6]
    assert [r.output_shape for r in s.rows] == [(1, 3), (1, 3), (1, 2)]


def test_restores_the_model_after_an_error():
    model = A.get("lenet5")
    with pytest.raises(ValueError, match="32x32"):
        summary(model, (1, 28, 28), verbose=False)
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert all(m.training for m in model.modules())
    assert model(minicnn.zeros(1, 1, 32, 32)).shape == (1, 10)


def test_module_is_callable_and_device_is_checked():
    import minicnn.summary as summary_module
    s = summary_module(A.get("lenet5_keras", input_size=28), (1, 28, 28), verbose=False)
    assert isinstance(s, ModelSummary) and s.parameters == 1_256_080
    assert isinstance(s.rows[0], LayerRow)
    if not minicnn.cuda_available():
        with pytest.raises(RuntimeError, match="cuda"):
            summary(A.get("lenet5"), (1, 32, 32), device="cuda", verbose=False)


def test_cli_help():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""            # in particular no runpy warning about minicnn.summary
    assert "usage: python -m minicnn.summary" in result.stdout
    for word in ("--input", "--num-classes", "--option", "resnet50", "lenet5"):
        assert word in result.stdout


def test_cli_runs_a_model_and_reports_errors():
    result = run_cli("lenet5", "--num-classes", "5", "-o", "c3_table=True")
    assert result.returncode == 0, result.stderr
    assert "Total params: 60,425" in result.stdout           # 60,850 - 5 * 85
    assert "Output 5 x (84 + 1)" in result.stdout and "MISMATCH" not in result.stdout
    bad = run_cli("lenet5", "--input", "1,28,28")
    assert bad.returncode == 2 and "Pad 28x28 MNIST digits" in bad.stderr and "Traceback" not in bad.stderr
    no_gpu = run_cli("lenet5", "--device", "cuda")
    if not minicnn.cuda_available():            # a runtime error: one line, exit 1
        assert no_gpu.returncode == 1 and no_gpu.stderr.count("\n") == 1, no_gpu.stderr
        assert no_gpu.stderr.startswith("python -m minicnn.summary: error: device 'cuda' is not available")
    unknown = run_cli("resnet19")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


def test_cli_options_are_parsed_as_train_parses_them():
    """-o false/true are booleans (ast.literal_eval kept "false" a string, which is true)."""
    result = run_cli("googlenet", "-o", "aux_logits=false")
    assert result.returncode == 0, result.stderr
    assert "Trainable params: 6,624,904" in result.stdout and "(6,624,904)" not in result.stdout
    for value, params in (("false", "61,750"), ("False", "61,750"), ("true", "60,850"), ("TRUE", "60,850")):
        result = run_cli("lenet5", "-o", f"c3_table={value}")
        assert result.returncode == 0 and f"Total params: {params}" in result.stdout, (value, result.stderr)
    result = run_cli("resnet18", "-o", "stem=small", "--input", "3,32,32", "--num-classes", "10")
    assert result.returncode == 0 and "Trainable params: 11,173,962" in result.stdout, result.stderr
    assert "maxpool                Identity           [1, 64, 32, 32]" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["lenet5", "--num-classes", "0"], "argument --num-classes: must be a positive integer, got 0"),
    (["lenet5", "-o", "nonsense=1"], "lenet5 has no option 'nonsense'; its options are in_channels=1, c3_table=False"),
    (["lenet5", "-o", "c3_table=yes"], "lenet5 option c3_table takes true or false, got 'yes'"),
    (["lenet5", "-o", "=1"], "expected KEY=VALUE"),
    (["alexnet", "--input", "3,32,32"], "AlexNet: images must be at least 63x63, got 32x32"),
    (["resnet18", "-o", "stem=tiny"], "ResNet: stem must be 'imagenet' (7x7/2 conv and max-pool) or 'small'"),
    (["resnet20", "-o", "shortcut=C"], "CifarResNet: shortcut must be 'A' (zero-padded identity) or 'B'"),
])
def test_cli_usage_errors_are_one_line_and_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m minicnn.summary: error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
