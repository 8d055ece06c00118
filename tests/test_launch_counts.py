"""Kernel launches per step of the GPU path, counted under the CuPy stand-in (``bench/launches.py``):
a change that adds launches to a LeNet-5 or ResNet-18 training step or a GoogLeNet inference batch
fails here. Lower the pins when a change removes some (the issue's targets: W1 <= 80, W3 <= 300,
W6 <= 220). The counts do not depend on the batch size, so the steps run on batches of 2."""
import json
import os
import subprocess
import sys

from conftest import standin_env

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

PINNED = {"W1": 59, "W3": 300, "W6": 216}      # launches per step; none of them may sync with the host

SCRIPT = """
import json, sys
sys.path.insert(0, 'bench')
import launches
print(json.dumps({w: launches.count(w)[:2] for w in sys.argv[1:]}))
"""


def test_launches_per_step_are_pinned():
    env = dict(os.environ, **standin_env())
    env.pop("MINICNN_KERNELS", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *PINNED], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    for w, pinned in PINNED.items():
        launches, syncs = counts[w]
        assert syncs == 0, (w, counts)
        assert launches <= pinned, f"{w}: {launches} launches per step, pinned at {pinned}: {counts}"
