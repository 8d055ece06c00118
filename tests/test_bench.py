"""Smoke tests of the benchmark runner (bench/run.py): it runs, and its JSON and Markdown have
the documented structure. The benchmark itself is not timed here: one iteration of W1, tiny GEMM."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn import backend

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"
TINY = ["--iters", "1", "--warmup", "0", "--gemm", "start", "--gemm-n", "128", "--gemm-reps", "2", "--quiet"]

# LeNet-5 on 1x32x32: C1 6*28*28*25 + C3 16*10*10*150 + C5 120*400 + F6 84*120 + output 10*84
LENET5_MACS = 117_600 + 240_000 + 48_000 + 10_080 + 840


def run_bench(tmp_path, *extra):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    proc = subprocess.run([sys.executable, str(RUN), "--workloads", "W1", *TINY, "--json", str(out_json),
                           "--markdown", str(out_md), *extra], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        errors = proc.stderr[-3000:]
        if out_json.exists():    # the runner got as far as writing: show the failing workers' errors
            report = json.loads(out_json.read_text())
            errors = [(fw, r.get("error"), r.get("stderr_tail")) for e in report["workloads"]
                      for fw, r in e["results"].items() if r["status"] != "ok"]
        pytest.fail(f"bench/run.py exited with {proc.returncode}: {errors}")
    return json.loads(out_json.read_text()), out_md.read_text(), proc.stdout


def check_result(r, framework):
    assert r["status"] == "ok", r
    assert r["framework"] == framework and r["workload"] == "W1" and r["batch"] == 256
    assert r["iters_timed"] == 1 and len(r["times_ms"]) == 1 and r["warmup"] == 0
    assert r["macs_per_image"] == LENET5_MACS
    assert r["flop_per_iter"] == 2 * 3 * LENET5_MACS * 256          # train step: x3
    assert r["median_ms"] > 0 and r["images_per_s"] == pytest.approx(256 / (r["median_ms"] / 1e3))
    assert r["gflops"] > 0 and 0 < r["fraction_of_gemm"]
    assert r["peak_rss_mib"] > 10
    assert r["env"]["OMP_NUM_THREADS"] == "2" and r["env"]["OPENBLAS_NUM_THREADS"] == "2"
    assert isinstance(r["threadpools"], list)


def test_bench_minicnn_w1(tmp_path):
    report, markdown, stdout = run_bench(tmp_path)
    assert set(report) >= {"meta", "gemm", "gemm_best_gflops", "workloads"}
    assert report["meta"]["threads"] == 2 and report["meta"]["device"] == "cpu"
    assert "--workloads W1" in report["meta"]["command"]
    gemm = report["gemm"]["minicnn"]
    assert set(gemm) == {"start"} and all(g["status"] == "ok" and g["gflops"] > 0 for g in gemm.values())
    (entry,) = report["workloads"]
    assert entry["id"] == "W1" and entry["model"] == "lenet5" and entry["mode"] == "train"
    assert list(entry["results"]) == ["minicnn"]
    check_result(entry["results"]["minicnn"], "minicnn")
    assert markdown.strip() == stdout.strip()             # printed and written alike
    assert "| id | model | mode | batch |" in markdown and "| W1 | lenet5 | train | 256 | 1x32x32 |" in markdown
    assert "Columns:" in markdown and "## minicnn / PyTorch" not in markdown


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_bench_compare_torch_w1(tmp_path):
    report, markdown, _ = run_bench(tmp_path, "--compare", "torch")
    (entry,) = report["workloads"]
    assert list(entry["results"]) == ["minicnn", "torch"]          # minicnn first, then torch
    for fw in ("minicnn", "torch"):
        check_result(entry["results"][fw], fw)
    assert entry["same_macs"] and entry["same_parameters"]         # torch_models matches minicnn's LeNet-5
    assert entry["ratio_images_per_s"] > 0 and entry["ratio_peak_rss"] > 0
    assert "## minicnn / PyTorch" in markdown and "| W1 | lenet5 | train |" in markdown


@pytest.mark.skipif(backend.cuda_available(), reason="a GPU is present: --device cuda would run")
def test_bench_cuda_without_gpu_fails_clearly():
    proc = subprocess.run([sys.executable, str(RUN), "--device", "cuda", "--workloads", "W1", *TINY],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("run.py: error: --device cuda is not available here")


@pytest.mark.parametrize("args, message", [
    (["--workloads", "W9"], "unknown workload(s) W9; choose from W1, W2"),
    (["--workloads", ","], "unknown workload(s) ','"),
    (["--wait-idle", "1.5"], "--wait-idle must be a finite number in [0, 1], got 1.5"),
    (["--budget", "-1"], "--budget must be a finite number >= 0, got -1.0"),
    (["--timeout", "inf"], "--timeout must be a finite number >= 0, got inf"),
    (["--threads", "0"], "--threads must be at least 1"),
])
def test_bench_usage_errors_are_one_line_exit_2(args, message):
    proc = subprocess.run([sys.executable, str(RUN), *TINY, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("run.py: error: ") and message in proc.stderr, proc.stderr


def test_bench_that_cannot_write_its_results_says_so_in_one_line(tmp_path):
    """A runtime error: one line, exit 1, the results printed and the files already written kept."""
    md, blocked = tmp_path / "r.md", tmp_path / "not-a-folder"
    blocked.write_text("a file")
    proc = subprocess.run([sys.executable, str(RUN), "--workloads", "W1", *TINY[:4], "--gemm", "none", "--quiet",
                           "--markdown", str(md), "--json", str(blocked / "r.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"run.py: error: cannot write {blocked / 'r.json'}: Not a directory (the results are " \
                          "printed above; choose another path)\n"
    assert "| W1 | lenet5 | train |" in proc.stdout and md.read_text().strip() == proc.stdout.strip()


def test_op_profile_times_every_op_of_a_lenet_step():
    script = RUN.parent / "op_profile.py"
    proc = subprocess.run([sys.executable, str(script), "W1", "--steps", "1", "--threads", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "W1 (lenet5, batch 256, 2 minicnn threads)" in proc.stdout
    rows = {line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.startswith("| ")}
    assert {"Conv2dFunction", "SubsampleFunction", "ScaledTanhFunction", "other"} <= rows
    bad = subprocess.run([sys.executable, str(script), "W5"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "inference workload" in bad.stderr


def test_op_profile_unknown_workload_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, str(RUN.parent / "op_profile.py"), "W9"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr == (
        "op_profile.py: error: argument workload: unknown workload 'W9'; choose from W1, W2, W3, W4, W5, W6, W7, W8\n")
