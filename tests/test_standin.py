"""The CUDA path on a machine without a GPU: every test selected by ``-k "cuda or gpu"`` runs in a
child pytest under the strict CuPy stand-in ``fakecupy`` (``../shared/tools/fakecupy``, or
``$FAKECUPY_DIR``), which refuses what real CuPy refuses (implicit host copies, NumPy/CuPy mixing,
API CuPy 14 lacks) and runs our RawKernels as C++.

A pass is a smoke test of the CuPy code paths (argument marshalling, dtypes, no hidden NumPy
calls), not proof: cuBLAS, CuPy's own kernels, atomics and speed are only checked on a real GPU
(``../shared/gpu/check.sh``, results in ``bench/RESULTS-gpu.md``). This file's names avoid "cuda"
and "gpu" so that the child's selection does not pick it up again.
"""
import os
import re
import subprocess
import sys

from conftest import standin_env

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# every RawKernel minicnn has; each must have been launched at least once by the device tests
KERNELS = ("im2col_kernel", "col2im_kernel", "max_pool_fwd_kernel", "max_pool_bwd_kernel",
           "bn_stats_block", "bn_apply", "bn_grad_sums_block", "bn_grad_input", "sgd_step",
           "sgd_step_multi", "bn_eval", "relu_fwd", "relu_bwd", "scaled_tanh_fwd", "scaled_tanh_bwd", "im2col_batch",
           "col2im_batch", "subsample_fwd", "subsample_bwd", "ce_fwd", "ce_bwd")


def test_the_device_tests_pass_on_the_cupy_standin():
    env = dict(os.environ, **standin_env())
    env.pop("MINICNN_KERNELS", None)       # both kernel sets, whatever this run uses: the RawKernels are the fast set's
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "fakereport", "-p", "no:cacheprovider",
                           "-k", "cuda or gpu", HERE], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 300, out[-3000:]         # 319 when this was written
    assert "failed" not in out.splitlines()[-1], out[-3000:]
    launches = re.search(r"RawKernel launches: (\{.*\})", out)
    assert launches, out[-3000:]
    missing = [k for k in KERNELS if f"'{k}'" not in launches.group(1)]
    assert not missing, f"never launched under the stand-in: {missing}\n{launches.group(0)}"
