"""PyTorch's own sample inputs (OpInfo, ``torch.testing._internal.common_methods_invocations.op_db``) for every
op minicnn has (``opinfo_table.OPS``): float64 on the CPU, forward values and dtypes, and the gradients of every
input (``torch.autograd.grad`` against minicnn's backward), compared with tight tolerances.

Skips without torch. torch is not among the dev extras, but the CI machine has it (torch 2.13, CPU), so the
test runs there; PyTorch's test helpers need ``expecttest``, which the dev extras install. Samples the
allowlist (``REFUSED``) names must raise its error.
"""
from __future__ import annotations

import functools
import re
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")     # PyTorch's internal test helpers import it
common_methods_invocations = pytest.importorskip("torch.testing._internal.common_methods_invocations")

import minicnn  # noqa: E402
from opinfo_table import MAX_SAMPLES, NO_GRAD, OPS, RANDOM, REFUSED  # noqa: E402

RTOL, ATOL = 1e-7, 1e-10

OP_DB = {(o.name + ("." + o.variant_test_name if o.variant_test_name else "")): o
         for o in common_methods_invocations.op_db}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """torch's own threads make its tiny ops 5x slower on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=None)
def samples(key):
    """The op's float64 CPU samples (with gradients where the op supports them), the same at every run;
    at most ``MAX_SAMPLES[key]``, every k-th."""
    op = OP_DB[key]
    torch.manual_seed(zlib.crc32(key.encode()))
    found = list(op.sample_inputs("cpu", torch.float64, requires_grad=op.supports_autograd))
    limit = MAX_SAMPLES.get(key, len(found))
    step = max(1, -(-len(found) // limit))
    return found[::step]


def classify(key, sample):
    """('refused', exception type, message pattern) or 'run'."""
    for k, which, exc, pattern in REFUSED:
        if k == key and which(sample):
            return ("refused", exc, pattern)
    return "run"


# --------------------------------------------------------------------------- torch -> minicnn

def to_minicnn(obj, leaves):
    """Tensors become minicnn Tensors (float ones keep requires_grad; ``leaves`` pairs them with torch's),
    dtypes NumPy dtypes, sizes tuples; containers are converted item by item."""
    if isinstance(obj, torch.Tensor):
        tensor = minicnn.tensor(obj.detach().numpy().copy(), requires_grad=obj.requires_grad)
        if obj.requires_grad:
            leaves.append((obj, tensor))
        return tensor
    if isinstance(obj, torch.dtype):
        return torch.empty((), dtype=obj).numpy().dtype
    if isinstance(obj, torch.Size):
        return tuple(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_minicnn(o, leaves) for o in obj)
    if isinstance(obj, dict):
        return {k: to_minicnn(v, leaves) for k, v in obj.items()}
    return obj


def outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def as_array(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, minicnn.Tensor):
        return np.asarray(x.data)
    return np.asarray(x)


def check_sample(key, sample):
    """Run one sample through torch and minicnn: None if they agree, else what differs."""
    leaves = []
    x = to_minicnn(sample.input, leaves)
    args = to_minicnn(sample.args, leaves)
    kwargs = to_minicnn(sample.kwargs, leaves)
    expected = outputs(OP_DB[key].op(sample.input, *sample.args, **sample.kwargs))
    got = outputs(OPS[key](minicnn, x, *args, **kwargs))
    if len(got) != len(expected):
        return f"{len(got)} outputs, torch gives {len(expected)}"
    for i, (m, t) in enumerate(zip(got, expected)):
        m, t = as_array(m), as_array(t)
        if m.shape != t.shape or m.dtype != t.dtype:
            return f"output {i}: {m.dtype}{list(m.shape)}, torch gives {t.dtype}{list(t.shape)}"
        if key not in RANDOM and not np.allclose(m, t, rtol=RTOL, atol=ATOL, equal_nan=True):
            return f"output {i}: largest difference {np.nanmax(np.abs(m - t)):.3g}"
    differentiable = [(m, t) for m, t in zip(got, expected)
                      if isinstance(t, torch.Tensor) and t.requires_grad and t.dtype.is_floating_point]
    if key in NO_GRAD or not differentiable or not leaves:
        return None
    generator = torch.Generator().manual_seed(0)
    grads_out = [torch.randn(t.shape, dtype=t.dtype, generator=generator) for _, t in differentiable]
    expected_grads = torch.autograd.grad([t for _, t in differentiable], [t for t, _ in leaves], grads_out,
                                         allow_unused=True)
    total = None
    for (m, _), g in zip(differentiable, grads_out):
        term = (m * minicnn.tensor(g.numpy())).sum()
        total = term if total is None else total + term
    total.backward()
    for i, ((t, m), want) in enumerate(zip(leaves, expected_grads)):
        have = np.zeros(t.shape) if m.grad is None else as_array(m.grad)
        want = np.zeros(t.shape) if want is None else want.numpy()
        if have.shape != want.shape:
            return f"gradient {i}: shape {have.shape}, torch gives {want.shape}"
        if key not in RANDOM and not np.allclose(have, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            return f"gradient {i}: largest difference {np.nanmax(np.abs(have - want)):.3g}"
    return None


def describe(sample):
    shape = lambda a: list(a.shape) if isinstance(a, torch.Tensor) else a  # noqa: E731
    inputs = [shape(a) for a in sample.input] if isinstance(sample.input, (list, tuple)) else shape(sample.input)
    return f"input {inputs}, args {[shape(a) for a in sample.args]}, kwargs { {k: shape(v) for k, v in sample.kwargs.items()} }"


def run(key, every=1):
    """Check the samples of ``key`` (every ``every``-th); return the list of failures."""
    failures = []
    for index, sample in list(enumerate(samples(key)))[::every]:
        kind = classify(key, sample)
        if isinstance(kind, tuple):
            _, exc, pattern = kind
            try:
                check_sample(key, sample)
            except exc as error:
                if not re.search(pattern, str(error)):
                    failures.append(f"#{index} {describe(sample)}: refused with {error!r}, expected /{pattern}/")
                continue
            failures.append(f"#{index} {describe(sample)}: not refused (expected {exc.__name__} /{pattern}/)")
            continue
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():   # NaN from a negative base, as torch's
                warnings.simplefilter("ignore")
                problem = check_sample(key, sample)
        except Exception as error:      # a crash is a failure like a wrong value, reported with the sample
            problem = f"raised {type(error).__name__}: {error}"
        if problem:
            failures.append(f"#{index} {describe(sample)}: {problem}")
    return failures


@pytest.mark.parametrize("key", sorted(OPS))
def test_opinfo_samples(key):
    failures = run(key)
    assert not failures, f"{key}: {len(failures)} of {len(samples(key))} samples differ from torch:\n" + "\n".join(failures[:10])


#: The ops whose kernels have a textbook version too: their samples (every 4th) run again under it.
KERNEL_OPS = ["nn.functional.conv2d", "nn.functional.max_pool2d", "nn.functional.avg_pool2d",
              "nn.functional.adaptive_avg_pool2d", "nn.functional.batch_norm", "nn.functional.linear",
              "nn.functional.local_response_norm", "nn.functional.max_unpool2d"]


@pytest.mark.parametrize("key", KERNEL_OPS)
def test_opinfo_samples_textbook_kernels(key):
    with minicnn.kernels.use("textbook"):
        failures = run(key, every=4)
    assert not failures, f"{key} (textbook kernels): {len(failures)} samples differ from torch:\n" + "\n".join(failures[:10])


def test_opinfo_counts():
    """At least 2,000 samples run, at most 100 refused by the allowlist; every op key exists in op_db."""
    assert not set(OPS) - set(OP_DB), f"not in torch's op_db: {sorted(set(OPS) - set(OP_DB))}"
    kinds = [classify(key, s) for key in OPS for s in samples(key)]
    run_count = len(kinds)
    refused = sum(isinstance(kind, tuple) for kind in kinds)
    print(f"OpInfo: {run_count} samples run ({run_count - refused} compared, {refused} refused)")
    assert run_count >= 2000 and refused <= 100
