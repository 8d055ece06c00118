"""Smoke test of the scaling benchmark (bench/distributed.py): it runs on 1 and 2 processes and its
JSON holds what the results file reports. One timed step of W1 (LeNet-5): nothing is timed here."""
import json
import os

from mpi_helpers import REPO, needs_mpi, python

import minicnn

BENCH = os.path.join(REPO, "bench", "distributed.py")


@needs_mpi
def test_scaling_benchmark_on_one_and_two_processes(tmp_path):
    out = tmp_path / "r.json"
    proc = python([BENCH, "--workload", "W1", "--iters", "1", "--warmup", "0", "--json", str(out),
                   "--markdown", str(tmp_path / "r.md")], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    one, strong, weak = report["results"]
    model = minicnn.architectures.get("lenet5")
    params = list(model.parameters())
    assert (one["processes"], strong["processes"], weak["processes"]) == (1, 2, 2)
    assert (strong["scaling"], weak["scaling"]) == ("strong", "weak")
    assert (one["global_batch"], strong["batch_per_process"], weak["global_batch"]) == (256, 128, 512)
    assert one["threads"] == strong["threads"] == 1
    assert one["bytes_all_reduced_per_step"] == 0
    # every gradient (float32) and one count per parameter tensor, in one bucket: 61,750 + 14 values
    assert strong["bytes_all_reduced_per_step"] == (sum(p.numel() for p in params) + len(params)) * 4 == 247_056
    assert strong["buckets"] == 1 and strong["bytes_broadcast_per_step"] == 0      # LeNet-5 has no buffers
    assert all(r["median_ms"] > 0 and r["images_per_s"] > 0 for r in report["results"])
    assert "| strong | 2 | 128 | 256 |" in proc.stdout and "| weak | 2 | 256 | 512 |" in proc.stdout
    assert (tmp_path / "r.md").read_text() == proc.stdout


def test_scaling_benchmark_usage_errors_are_one_line_exit_2():
    proc = python([BENCH, "--processes", "2,4"])
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "python bench/distributed.py: error: argument --processes: must start with 1 (the baseline), got 2,4"]
