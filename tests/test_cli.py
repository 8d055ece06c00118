"""minicnn.cli: the pieces every command line shares (option values, checks, error lines)."""
import argparse
import errno
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn import architectures, cli, distributed, kernels


@pytest.mark.parametrize("text, value", [
    ("false", False), ("False", False), ("TRUE", True), ("none", None), ("null", None), ("3", 3), ("-2", -2),
    ("0.5", 0.5), ("1e-3", 1e-3), ("3,224,224", (3, 224, 224)), ("(1, 2)", (1, 2)), ("[0.5,true]", (0.5, True)),
    ("relu", "relu"), (" 7 ", 7)])
def test_option_values(text, value):
    got = cli.parse_value(text)
    assert got == value and type(got) is type(value)


def test_option_keys():
    assert cli.parse_option("aux-logits=false") == ("aux_logits", False)
    assert cli.parse_option("input_size=28") == ("input_size", 28)
    for bad in ("aux_logits", "=1", "two words=1"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
            cli.parse_option(bad)


def test_options_are_checked_against_the_builder():
    accepted = architectures.builder_options("googlenet")
    assert accepted == {"num_classes": 1000, "in_channels": 3, "aux_logits": True, "dropout": 0.2,
                        "dropout_aux": 0.7}
    assert cli.check_options("googlenet", {"aux_logits": False, "dropout": 0}, accepted) is None
    assert "has no option 'aux'" in cli.check_options("googlenet", {"aux": False}, accepted)
    assert "takes true or false, got 1" in cli.check_options("googlenet", {"aux_logits": 1}, accepted)
    assert "takes a number, got 'high'" in cli.check_options("googlenet", {"dropout": "high"}, accepted)
    assert "takes an integer, got 2.5" in cli.check_options("googlenet", {"in_channels": 2.5}, accepted)


def test_number_types_refuse_infinities_nan_and_values_outside():
    lr = cli.number_in(0, float("inf"), low_open=True)
    assert lr("0.1") == 0.1 and lr("1e30") == 1e30
    for bad in ("0", "-1", "inf", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"must be a (finite )?number > 0"):
            lr(bad)
    momentum = cli.number_in(0, 1, high_open=True)
    assert momentum("0") == 0 and momentum("0.99") == 0.99
    with pytest.raises(argparse.ArgumentTypeError, match=r"\[0, 1\)"):
        momentum("1")
    with pytest.raises(argparse.ArgumentTypeError, match="must be an integer >= 0, got -1"):
        cli.nonneg_int("-1")


def test_os_errors_are_described_with_advice():
    full = OSError(errno.ENOSPC, "No space left on device", "runs/x/last.npz")
    assert cli.describe_os_error(full) == ("runs/x/last.npz: No space left on device "
                                           "(the disk is full: free some space)")
    assert "read-only" in cli.describe_os_error(OSError(errno.EROFS, "Read-only file system", "/ro"))
    assert cli.describe_os_error(OSError(errno.ENOSPC, "No space left on device")).startswith("No space")


def test_run_reporting_gives_one_line_and_exit_1(capsys, monkeypatch):
    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device", "out/metrics.csv")
    monkeypatch.delenv("MINICNN_DEBUG", raising=False)
    assert cli.run_reporting("prog", False, full_disk) == 1
    err = capsys.readouterr().err
    assert err == "prog: error: out/metrics.csv: No space left on device (the disk is full: free some space)\n"
    assert cli.run_reporting("prog", True, full_disk) == 1         # --debug: the traceback, then the line
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith("(the disk is full: free some space)\n")

    def bug():
        raise KeyError("a bug keeps its traceback")
    with pytest.raises(KeyError):
        cli.run_reporting("prog", False, bug)
    monkeypatch.setenv("MINICNN_DEBUG", "1")
    assert cli.debug_requested(argparse.Namespace(debug=False))
    monkeypatch.setenv("MINICNN_DEBUG", "0")
    assert not cli.debug_requested(argparse.Namespace(debug=False))


ENV_CASES = [("MINICNN_KERNELS", "fastt", "MINICNN_KERNELS must be 'fast' or 'textbook', got 'fastt'"),
             ("MINICNN_NUM_THREADS", "0", "MINICNN_NUM_THREADS must be a whole number >= 1, got '0'")]


@pytest.mark.parametrize("variable, value, message", ENV_CASES, ids=[c[0] for c in ENV_CASES])
@pytest.mark.parametrize("command", [["minicnn.train", "lenet5", "--epochs", "1"], ["minicnn.summary", "lenet5"],
                                     ["minicnn.predict", "last.npz", "x.png"],
                                     ["minicnn.visualize", "lenet5", "--kinds", "im2col", "--out", "figs"]],
                         ids=["train", "summary", "predict", "visualize"])
def test_a_wrong_environment_variable_is_a_usage_error_of_every_command(tmp_path, command, variable, value, message):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo, **{variable: value})
    proc = subprocess.run([sys.executable, "-m", *command], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr == f"python -m {command[0]}: error: {message}\n", proc.stderr
    assert os.listdir(tmp_path) == []                                        # nothing left behind


def test_a_wrong_kernel_set_in_the_environment_fails_at_the_first_kernel_not_at_import(monkeypatch):
    monkeypatch.setattr(kernels, "_mode", "fastt")
    monkeypatch.setenv("MINICNN_KERNELS", "fastt")
    with pytest.raises(ValueError, match="MINICNN_KERNELS must be 'fast' or 'textbook', got 'fastt'"):
        kernels.relu_forward(np.ones(3))
    with kernels.use("textbook"):                                            # an explicit choice still works
        assert kernels.relu_forward(np.ones(3))[0].tolist() == [1, 1, 1]


def test_a_wrong_distributed_timeout_is_named(monkeypatch):
    monkeypatch.setenv("MINICNN_DIST_TIMEOUT", "abc")
    assert distributed.environment_error() == "MINICNN_DIST_TIMEOUT must be a number of seconds, got 'abc'"
    monkeypatch.setenv("MINICNN_DIST_TIMEOUT", "30")
    assert distributed.environment_error() is None


def test_options_a_command_line_sets_another_way_are_refused_with_the_way():
    accepted = {"num_classes": 1000, "in_channels": 3, "c3_table": False}
    reserved = {"num_classes": "the dataset sets it", "in_channels": "use --in-channels"}
    assert cli.check_options("lenet5", {"num_classes": 5}, accepted, reserved) == \
        "lenet5 option num_classes is not set with -o: the dataset sets it"
    assert cli.check_options("lenet5", {"foo": 1}, accepted, reserved) == \
        "lenet5 has no option 'foo'; its options are c3_table=False"
    assert cli.check_options("lenet5", {"in_channels": 3}, accepted) is None        # where nothing reserves it


def test_summary_with_in_channels_as_an_option_feeds_that_many_channels(capsys):
    summary_module = importlib.import_module("minicnn.summary")
    assert summary_module.main(["lenet5", "-o", "in_channels=3"]) == 0
    assert 'Model: "LeNet5"   input: (1, 3, 32, 32)' in capsys.readouterr().out
