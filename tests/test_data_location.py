"""The real-data tests pass wherever the README's instructions put the data, not only in CI's
``../shared/data``: the data tests run again in a child pytest with ``MINICNN_DATA`` pointing at
another folder (links to the real files) and ``CI=true``, so a test that looked for
``../shared/data`` itself would fail there instead of skipping."""
import os
import re
import subprocess
import sys

from conftest import REPO, require_dataset


def test_the_data_tests_pass_with_the_data_somewhere_else(tmp_path):
    elsewhere = tmp_path / "my data"                     # a space in the path, as a user's may have
    for name in ("mnist", "fashion-mnist"):
        source = require_dataset(name)
        (elsewhere / name).mkdir(parents=True)
        for entry in os.listdir(source):
            if entry.endswith(".gz") or entry.endswith("-ubyte"):
                os.symlink(os.path.join(source, entry), elsewhere / name / entry)
    published = all((elsewhere / "mnist" / f"t10k-{kind}-ubyte.gz").exists() for kind in ("images-idx3", "labels-idx1"))
    # CI=true turns every skip for missing data into a failure; where the data are kept gunzipped,
    # the download tests (which serve the published .gz files) may skip, and only they
    env = dict(os.environ, MINICNN_DATA=str(elsewhere), CI="true" if published else "")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           os.path.join(REPO, "tests", "data")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all("published MNIST t10k .gz files are not in" in line for line in skips), skips
    assert published or skips, "gunzipped data, yet the download tests ran"
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary) and "failed" not in summary and "error" not in summary, summary
    assert published == ("skipped" not in summary), summary        # with the published files: nothing skipped
