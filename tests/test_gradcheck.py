"""minicnn.gradcheck: a non-finite analytic or numeric gradient is a failure that names the element."""
import numpy as np
import pytest

import minicnn
from minicnn import GradcheckError, gradcheck
from minicnn.autograd import Function


def x64(values):
    return minicnn.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def test_infinite_analytic_gradient_fails():
    # d sqrt(t)/dt = 0.5 / sqrt(t) is inf at 0; the finite difference there is nan (sqrt(-eps))
    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(GradcheckError, match=r"input 0 .*index \(1,\): analytic -?inf, numeric nan"):
            gradcheck(lambda t: t ** 0.5, x64([1.0, 0.0, 4.0]))
        assert gradcheck(lambda t: t ** 0.5, x64([1.0, 0.0, 4.0]), raise_exception=False) is False


class NanBackward(Function):
    """y = 2x with a backward that returns g * nan."""

    def forward(self, x):
        return 2 * x

    def backward(self, grad):
        return grad * np.nan


def test_nan_analytic_gradient_fails():
    with pytest.raises(GradcheckError, match=r"3 of 3 elements .*index \(0,\): analytic nan"):
        gradcheck(lambda t: NanBackward.apply(t), x64([0.5, 1.0, 2.0]))


class InfNearOne(Function):
    """y = 2x, except +inf where x is exactly 1 + 1e-6 (what the finite difference at x = 1 evaluates)."""

    def forward(self, x):
        return np.where(x == 1.0 + 1e-6, np.inf, 2 * x)

    def backward(self, grad):
        return 2 * grad


def test_infinite_numeric_gradient_fails():
    with pytest.raises(GradcheckError, match=r"1 of 3 elements .*index \(1,\): analytic [-\d.]+, numeric [-]?inf"):
        gradcheck(lambda t: InfNearOne.apply(t), x64([0.5, 1.0, 2.0]))


def test_finite_gradients_still_pass():
    assert gradcheck(lambda t: t ** 0.5, x64([1.0, 0.25, 4.0]))
