"""Shared test configuration: hypothesis profiles, device parametrisation, the real datasets."""
import os

import pytest
from hypothesis import HealthCheck, settings

import minicnn
from minicnn import backend

# "ci" (the default): derandomised, no deadline, bounded examples, so every run is the same.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=25, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

cuda = pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and an NVIDIA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=cuda)]


@pytest.fixture(params=DEVICES)
def device(request):
    """Run a test on every device: 'cpu' always, 'cuda' where CuPy and a GPU are present."""
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    minicnn.manual_seed(0)
    yield


# --------------------------------------------------------------------------- both kernel sets

#: Test folders whose tests run twice, once with each kernel set (fast and textbook), unless
#: MINICNN_KERNELS picks one for the whole run.
BOTH_KERNEL_SETS = {"kernels", "architectures"}


def pytest_generate_tests(metafunc):
    folder = os.path.basename(os.path.dirname(str(metafunc.definition.path)))
    if folder in BOTH_KERNEL_SETS and not os.environ.get("MINICNN_KERNELS"):
        metafunc.fixturenames.append("kernel_set")
        metafunc.parametrize("kernel_set", ["fast", "textbook"])


@pytest.fixture(autouse=True)
def _kernel_set(request):
    """Runs the test under the kernel set of its ``kernel_set`` parameter (if it has one)."""
    if "kernel_set" not in request.fixturenames:
        yield
        return
    with minicnn.kernels.use(request.getfixturevalue("kernel_set")):
        yield


# --------------------------------------------------------------------------- the real datasets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _data_root() -> str:
    """Where the real MNIST / Fashion-MNIST files are: ``$MINICNN_DATA`` (the README's instructions),
    else ``../shared/data`` next to the checkout."""
    return os.path.abspath(os.environ.get("MINICNN_DATA") or os.path.join(REPO, "..", "shared", "data"))


#: Resolved once, when the suite starts: tests that take ``MINICNN_DATA`` out of their own
#: environment (to test the look-up) still know where the real files are.
DATA_ROOT = _data_root()

#: Under ``CI=true`` a missing dataset fails the tests that need it instead of skipping them.
REQUIRE_DATA = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

IDX_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]


def dataset_dir(name: str):
    """``DATA_ROOT/name`` if it holds the four IDX files of ``name`` (gzipped or not), else None."""
    folder = os.path.join(DATA_ROOT, name)
    ok = all(os.path.isfile(os.path.join(folder, f + ".gz")) or os.path.isfile(os.path.join(folder, f))
             for f in IDX_FILES)
    return folder if ok else None


def require_dataset(name: str) -> str:
    """The folder of the real dataset ``name``; skip the test without it (fail it under ``CI=true``)."""
    folder = dataset_dir(name)
    if folder is None:
        message = (f"real {name} files not found in {os.path.join(DATA_ROOT, name)}: set MINICNN_DATA to a "
                   f"folder holding {name}/ (e.g. ../shared/data)")
        if REQUIRE_DATA:
            pytest.fail(message + " (CI=true: a missing dataset fails the run)", pytrace=False)
        pytest.skip(message)
    return folder


#: The strict CuPy stand-in (``../shared/tools/fakecupy``, or ``$FAKECUPY_DIR``).
STANDIN = os.path.abspath(os.environ.get("FAKECUPY_DIR") or os.path.join(REPO, "..", "shared", "tools", "fakecupy"))


def standin_env() -> dict:
    """The environment variables that run a child Python on the CuPy stand-in (its folder first on
    PYTHONPATH, then the checkout); skip the test without it (fail it under ``CI=true``)."""
    if not os.path.isdir(STANDIN):
        message = f"the CuPy stand-in is not at {STANDIN} (set FAKECUPY_DIR)"
        if REQUIRE_DATA:
            pytest.fail(message + " (CI=true)", pytrace=False)
        pytest.skip(message)
    return {"PYTHONPATH": STANDIN + os.pathsep + REPO, "FAKECUPY_API": os.path.join(STANDIN, "api14.json")}


@pytest.fixture(scope="session")
def mnist_dir():
    """The real MNIST folder (see :func:`require_dataset`)."""
    return require_dataset("mnist")


@pytest.fixture(scope="session")
def fashion_mnist_dir():
    """The real Fashion-MNIST folder (see :func:`require_dataset`)."""
    return require_dataset("fashion-mnist")


#: Mark a test that reads real MNIST (skipped without it; failed under ``CI=true``).
needs_mnist = pytest.mark.usefixtures("mnist_dir")
