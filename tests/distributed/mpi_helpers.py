"""Running Python under ``mpiexec`` from the tests, and skipping them cleanly without the ``mpi`` extra.

The tests that need several processes start ``mpiexec -n 2 python ...`` as a subprocess, with a
timeout (a hang fails the test instead of blocking the suite). Without mpi4py (or without an
``mpiexec``, which the ``mpich`` wheel of the extra brings) they are skipped: the only skip of the
distributed tests. mpi4py is looked for without importing it (importing it would start MPI in the
test process).
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
from conftest import DATA_ROOT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
FAULTS = os.path.join(REPO, "tests", "faults.py")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and MPIEXEC is not None

needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs the mpi extra (mpi4py and an mpiexec): "
                                                    "pip install -e '.[mpi]'")


def environment(env_extra=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), MINICNN_DATA=DATA_ROOT)
    for name in ("MINICNN_NUM_THREADS", "OMP_NUM_THREADS", "MINICNN_DIST_TIMEOUT"):
        env.pop(name, None)
    env.update(env_extra or {})
    return env


def mpiexec(n, args, cwd=REPO, env_extra=None, timeout=120):
    """``mpiexec -n n python args...`` in ``cwd``; the CompletedProcess (text output)."""
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args], cwd=cwd, env=environment(env_extra),
                          capture_output=True, text=True, timeout=timeout)


def python(args, cwd=REPO, env_extra=None, timeout=120):
    """``python args...`` in ``cwd`` (a job of one process, no launcher)."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environment(env_extra), capture_output=True,
                          text=True, timeout=timeout)
