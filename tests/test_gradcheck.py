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


# ---- guard rails: a backward that returns a gradient of the wrong form (issue 21, item 5)

class ForgetsToUnbroadcast(Function):
    """a * b with broadcasting, whose backward forgets to sum the gradient back to b's shape."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        return grad * self.b, grad * self.a          # db has a's shape (2, 3), b is (3,)


class IntegerGradient(Function):
    def forward(self, a):
        return a * 2

    def backward(self, grad):
        return (grad * 2).astype(np.int64)


def test_backward_names_the_function_the_argument_and_both_shapes():
    a = minicnn.randn(2, 3, dtype=minicnn.float64, requires_grad=True)
    b = minicnn.randn(3, dtype=minicnn.float64, requires_grad=True)
    with pytest.raises(minicnn.autograd.InvalidGradientError,
                       match=r"ForgetsToUnbroadcast\.backward returned a gradient for its argument 1 \(counting from 0\) "
                             r"of shape \(2, 3\), but the argument has shape \(3,\): did you forget to sum the "
                             r"broadcast gradient back to the input's shape\?"):
        ForgetsToUnbroadcast.apply(a, b).sum().backward()
    assert b.grad is None
    with pytest.raises(RuntimeError, match=r"IntegerGradient\.backward .* argument 0 .* of dtype int64"):
        (IntegerGradient.apply(a) * 1).sum().backward()


def test_a_gradient_of_another_float_dtype_is_cast_as_pytorch_does():
    class Float64Gradient(Function):
        def forward(self, a):
            return a * 2

        def backward(self, grad):
            return grad.astype(np.float64) * 2
    a = minicnn.ones(3, requires_grad=True)
    (Float64Gradient.apply(a) * a).sum().backward()
    assert a.grad.dtype == np.float32 and np.allclose(a.grad.numpy(), 4.0)


def test_gradcheck_reports_a_wrong_shaped_or_typed_gradient():
    a = minicnn.randn(2, 3, dtype=minicnn.float64, requires_grad=True)
    b = minicnn.randn(3, dtype=minicnn.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match=r"wrong form: .*ForgetsToUnbroadcast.* shape \(2, 3\).* \(3,\)"):
        gradcheck(ForgetsToUnbroadcast.apply, a, b)
    assert gradcheck(ForgetsToUnbroadcast.apply, a, b, raise_exception=False) is False
    with pytest.raises(GradcheckError, match="dtype int64"):
        gradcheck(IntegerGradient.apply, a)
    assert a.grad is None and b.grad is None
