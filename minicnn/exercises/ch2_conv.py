"""Chapter 2 (convolution): im2col, conv2d_forward, conv2d_backward."""
from __future__ import annotations

import numpy as np

from ..kernels import textbook
from .common import Exercise, Wrong, array_of, check_grad, compare, unmodified

_GEOMETRY_DOC = '''    kernel_size, stride, padding, dilation: pairs (kH, kW), (sh, sw), (ph, pw), (dh, dw); padding adds
        ph zero rows at the top AND at the bottom (pw columns left and right).
    Output size: Ho = (H + 2 ph - dh (kH - 1) - 1) // sh + 1, and likewise Wo.'''

STUB_IM2COL = '''"""Exercise im2col (chapter 2): every receptive field of an image batch as one column of a matrix.

Check it with:  python -m minicnn.exercises check im2col
"""
import numpy as np


def im2col(x, kernel_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """x (N, C, H, W) -> cols (C*kH*kW, N*Ho*Wo), x's dtype.

''' + _GEOMETRY_DOC + '''

    Column (n, oh, ow) (in that order: n slowest) holds output pixel (oh, ow) of image n's receptive
    field; row (c, i, j) (c slowest) the element at kernel offset (i, j) of channel c:

        cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]

    where xpad is x zero-padded (np.pad). Then a convolution is ONE matrix product: weight (O, C*kH*kW) @ cols.
    Loop over the kH*kW offsets (i, j) and copy a strided slice of xpad each time, not over pixels.
    """
    raise NotImplementedError("im2col: not implemented yet")
'''


def tb_im2col(x, k, s, p, d):
    (ph, pw) = p
    return textbook.im2col(x, k, s, ((ph, ph), (pw, pw)), d).reshape(x.shape[1] * k[0] * k[1], -1)


def _out_size(H, k, s, p, d):
    return (H + 2 * p - d * (k - 1) - 1) // s + 1


def _undilated_slices(x, k, s, p, d):
    """im2col with the right output size but the kernel offsets read undilated (i, not i*dh)."""
    N, C, H, W = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    Ho, Wo = _out_size(H, k[0], s[0], p[0], d[0]), _out_size(W, k[1], s[1], p[1], d[1])
    cols = np.zeros((C, k[0], k[1], N, Ho, Wo))
    for i in range(k[0]):
        for j in range(k[1]):
            cols[:, i, j] = xpad[:, :, i:i + s[0] * (Ho - 1) + 1:s[0], j:j + s[1] * (Wo - 1) + 1:s[1]].transpose(1, 0, 2, 3)
    return cols.reshape(C * k[0] * k[1], -1)


#: (x shape, kernel, stride, padding, dilation) for the random stage: batch 1, non-square maps, stride 2,
#: padding, dilation, 1x1 kernels.
CONV_CASES = [((2, 3, 5, 6), (3, 3), (1, 1), (0, 0), (1, 1)), ((1, 2, 7, 5), (3, 2), (2, 1), (1, 0), (1, 1)),
              ((2, 1, 6, 6), (2, 2), (2, 2), (1, 1), (1, 1)), ((3, 2, 7, 7), (3, 3), (1, 2), (2, 1), (2, 2)),
              ((2, 4, 3, 4), (1, 1), (1, 1), (0, 0), (1, 1)), ((1, 1, 5, 4), (5, 4), (1, 1), (0, 0), (1, 1))]


def _im2col_stage1(mod):
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5)).astype(np.float32)
    before = x.copy()
    cols = mod.im2col(x, (3, 3), (1, 1), (0, 0), (1, 1))
    if isinstance(cols, np.ndarray) and cols.shape == (18, 27):
        raise Wrong("cols has shape (18, 27), the transpose of (27, 18): one COLUMN per output pixel "
                    "(rows: C*kH*kW = 27, columns: N*Ho*Wo = 18)")
    array_of("im2col(x (2, 3, 5, 5), kernel (3, 3))", cols, (27, 18), np.float32)
    unmodified("x", before, x)


def _im2col_stage2(mod):
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    got = mod.im2col(x, (2, 2), (1, 1), (0, 0), (1, 1))
    expected = tb_im2col(x, (2, 2), (1, 1), (0, 0), (1, 1))
    compare("im2col of [[1, 2, 3], [4, 5, 6], [7, 8, 9]] with a 2x2 kernel", expected, got, [
        (expected.T, "your matrix is transposed: one COLUMN per output pixel (rows: C*kH*kW, columns: N*Ho*Wo)")])


def _im2col_stage3(mod):
    rng = np.random.default_rng(7)
    for shape, k, s, p, d in CONV_CASES:
        x = rng.normal(size=shape)
        got = mod.im2col(x, k, s, p, d)
        expected = tb_im2col(x, k, s, p, d)
        what = f"im2col of x {shape} with kernel {k}, stride {s}, padding {p}, dilation {d}"
        if isinstance(got, np.ndarray) and got.shape != expected.shape:
            H, W = shape[2:]
            for change, q in (("padding", (k, s, (0, 0), d)), ("stride", (k, (1, 1), p, d)),
                              ("dilation", (k, s, p, (1, 1)))):
                cols = shape[0] * _out_size(H, q[0][0], q[1][0], q[2][0], q[3][0]) * \
                    _out_size(W, q[0][1], q[1][1], q[2][1], q[3][1])
                if got.shape == (expected.shape[0], cols) and cols != expected.shape[1]:
                    raise Wrong(f"{what} has shape {got.shape}, expected {expected.shape}: that is the shape without "
                                f"the {change}: use it in the output size and in the slices")
        array_of(what, got, expected.shape)
        C, (kh, kw), N = shape[1], k, shape[0]
        six = expected.reshape(C, kh, kw, N, -1)
        compare(what, expected, got, [
            (six.transpose(1, 2, 0, 3, 4).reshape(expected.shape),
             "the rows are in the wrong order: channel first (slowest), then the kernel row i, then column j"),
            (expected.reshape(-1, N, expected.shape[1] // N).transpose(0, 2, 1).reshape(expected.shape),
             "the columns are in the wrong order: image n first (slowest), then the output row, then column"),
            (_undilated_slices(x, k, s, p, d) if d != (1, 1) else None, "the dilation is ignored: offset (i, j) of the kernel reads xpad[.., oh*sh + i*dh, ow*sw + j*dw]")])


# --------------------------------------------------------------------------- conv2d_forward

STUB_CONV_FORWARD = '''"""Exercise conv2d_forward (chapter 2): a convolution as im2col and one matrix product.

Check it with:  python -m minicnn.exercises check conv2d_forward
"""
import numpy as np

from im2col import im2col   # your im2col.py, in this folder (exercise im2col)


def conv2d_forward(x, weight, bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """x (N, C, H, W), weight (O, C, kH, kW), bias (O,) or None  ->  out (N, O, Ho, Wo), x's dtype.

''' + _GEOMETRY_DOC + '''

        out[n, o, oh, ow] = bias[o] + sum over c, i, j of weight[o, c, i, j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]

    (a cross-correlation: the kernel is not flipped, as in every deep-learning library). With
    cols = im2col(x, ...) of shape (C*kH*kW, N*Ho*Wo) this is one product:
    weight.reshape(O, -1) @ cols, of shape (O, N*Ho*Wo); reshape it to (O, N, Ho, Wo), move the batch axis
    first (transpose), add the bias to each output channel.
    """
    raise NotImplementedError("conv2d_forward: not implemented yet")
'''


def tb_conv(x, w, b, s, p, d):
    return textbook.conv2d_forward(x, w, b, s, ((p[0], p[0]), (p[1], p[1])), d)


def _conv_inputs(rng, shape, k, O=3, dtype=np.float64):
    return (rng.normal(size=shape).astype(dtype), rng.normal(size=(O, shape[1], *k)).astype(dtype),
            rng.normal(size=O).astype(dtype))


def _conv_fw_stage1(mod):
    x, w, b = _conv_inputs(np.random.default_rng(0), (2, 3, 5, 5), (3, 3), 4, np.float32)
    copies = [a.copy() for a in (x, w, b)]
    out = mod.conv2d_forward(x, w, b, (1, 1), (0, 0), (1, 1))
    array_of("conv2d_forward(x (2, 3, 5, 5), weight (4, 3, 3, 3)) (N, O, Ho, Wo)", out, (2, 4, 3, 3), np.float32)
    for name, a, c in zip(("x", "weight", "bias"), (x, w, b), copies):
        unmodified(name, c, a)


def _conv_fw_wrongs(x, w, b, s, p, d, expected):
    O = w.shape[0]
    nobias = tb_conv(x, w, None, s, p, d)[0]
    flipped = tb_conv(x, w[:, :, ::-1, ::-1].copy(), b, s, p, d)[0]
    N, _, Ho, Wo = expected.shape
    mat = (nobias.transpose(1, 0, 2, 3).reshape(O, -1))
    no_transpose = mat.reshape(N, O, Ho, Wo) + b.reshape(1, -1, 1, 1) if N > 1 else None
    return [(nobias, "the bias is missing: add bias[o] to every pixel of output channel o"),
            (flipped, "the kernel is flipped: conv2d in deep learning is a cross-correlation, weight[o, c, i, j] "
                      "multiplies xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]"),
            (no_transpose, "the product (O, N*Ho*Wo) was reshaped straight to (N, O, Ho, Wo): reshape it to "
                           "(O, N, Ho, Wo), then transpose(1, 0, 2, 3)")]


def _conv_fw_stage2(mod):
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]], [[[0.0, 2.0], [1.0, 0.0]]]])
    b = np.array([1.0, -1.0])
    expected = tb_conv(x, w, b, (1, 1), (0, 0), (1, 1))[0]
    got = mod.conv2d_forward(x, w, b, (1, 1), (0, 0), (1, 1))
    compare("conv2d of [[0, 1, 2], [3, 4, 5], [6, 7, 8]] with kernels [[1, 0], [0, -1]] and [[0, 2], [1, 0]], "
            "bias [1, -1]", expected, got, _conv_fw_wrongs(x, w, b, (1, 1), (0, 0), (1, 1), expected))


def _conv_fw_stage3(mod):
    rng = np.random.default_rng(8)
    for shape, k, s, p, d in CONV_CASES:
        x, w, b = _conv_inputs(rng, shape, k)
        expected = tb_conv(x, w, b, s, p, d)[0]
        what = f"conv2d_forward of x {shape}, weight {w.shape}, stride {s}, padding {p}, dilation {d}"
        compare(what, expected, mod.conv2d_forward(x, w, b, s, p, d), _conv_fw_wrongs(x, w, b, s, p, d, expected))
    compare("conv2d_forward with bias None", tb_conv(x, w, None, s, p, d)[0], mod.conv2d_forward(x, w, None, s, p, d))


# --------------------------------------------------------------------------- conv2d_backward

STUB_CONV_BACKWARD = '''"""Exercise conv2d_backward (chapter 2): the gradients of a convolution, dx through col2im.

Check it with:  python -m minicnn.exercises check conv2d_backward
"""
import numpy as np

from im2col import im2col   # your im2col.py, in this folder (exercise im2col)


def col2im(cols, x_shape, kernel_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """The adjoint of im2col: cols (C*kH*kW, N*Ho*Wo) -> dx of shape x_shape (N, C, H, W).

    Every entry of cols is ADDED back (+=, windows overlap) to the pixel of the padded image it was
    copied from; then the padding is cut off: dx = dxpad[:, :, ph:ph + H, pw:pw + W].
    """
    raise NotImplementedError("col2im: not implemented yet")


def conv2d_backward(grad, x, weight, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """grad (N, O, Ho, Wo) = dL/d out of conv2d_forward(x, weight, bias, ...)  ->  (dx, dweight, dbias).

''' + _GEOMETRY_DOC + '''

    With cols = im2col(x, ...) (C*kH*kW, N*Ho*Wo) and grad2 = grad as (O, N*Ho*Wo) (batch axis moved
    after the channel axis first):
        dbias   (O,)            = grad summed over the batch and both spatial axes
        dweight (O, C, kH, kW)  = grad2 @ cols.T, reshaped
        dx      (N, C, H, W)    = col2im(W.T @ grad2, ...) with W = weight.reshape(O, C*kH*kW)
    """
    raise NotImplementedError("conv2d_backward: not implemented yet")
'''


def _conv_bw(mod, grad, x, w, s, p, d):
    result = mod.conv2d_backward(grad, x, w, s, p, d)
    if not isinstance(result, tuple) or len(result) != 3:
        raise Wrong("conv2d_backward must return a tuple (dx, dweight, dbias)")
    return result


def _conv_bw_shapes(grad, x, w, result, dtype=None):
    dx, dw, db = result
    N, O = grad.shape[:2]
    if isinstance(db, np.ndarray) and db.shape in {(N, O), (O, N)} and (N, O) != (O,):
        raise Wrong(f"your dbias has shape {db.shape} (N, O): sum over the batch and spatial axes, (0, 2, 3), "
                    f"to get one number per output channel, ({O},)")
    if isinstance(db, np.ndarray) and db.ndim > 1:
        raise Wrong(f"your dbias has shape {db.shape}: sum grad over the batch and spatial axes (0, 2, 3), to ({O},)")
    H, W = x.shape[2:]
    if isinstance(dx, np.ndarray) and dx.ndim == 4 and dx.shape[:2] == x.shape[:2] and dx.shape[2:] != (H, W) \
            and dx.shape[2] >= H and dx.shape[3] >= W:
        raise Wrong(f"dx has shape {dx.shape}, the padded image's: cut the padding off in col2im "
                    f"(dxpad[:, :, ph:ph + H, pw:pw + W]) to get x's shape {x.shape}")
    array_of("dx", dx, x.shape, dtype)
    array_of("dweight", dw, w.shape, dtype)
    array_of("dbias", db, (O,), dtype)


def _conv_bw_wrongs(grad, x, w, s, p, d):
    """dx when the weight is reshaped instead of transposed, and when col2im assigns instead of adding."""
    O, C, kh, kw = w.shape
    N, _, Ho, Wo = grad.shape
    grad2 = grad.transpose(1, 0, 2, 3).reshape(O, -1)
    pads = ((p[0], p[0]), (p[1], p[1]))
    no_t = textbook.col2im((w.reshape(C * kh * kw, O) @ grad2).reshape(C, kh, kw, N, Ho, Wo), x.shape, (kh, kw),
                           s, pads, d)
    dcols = (w.reshape(O, -1).T @ grad2).reshape(C, kh, kw, N, Ho, Wo)
    (t, _), (l, _) = pads
    dxpad = np.zeros((N, C, x.shape[2] + 2 * p[0], x.shape[3] + 2 * p[1]))
    for i, j, rows, cols in textbook._offsets((kh, kw), s, d, Ho, Wo):
        dxpad[:, :, rows, cols] = dcols[:, i, j].transpose(1, 0, 2, 3)
    assigned = dxpad[:, :, t:t + x.shape[2], l:l + x.shape[3]]
    return [(no_t, "dx looks like the forward weight was not transposed: dcols = W.T @ grad2 with W = "
                   "weight.reshape(O, C*kH*kW) (a reshape to (C*kH*kW, O) is not a transpose)"),
            (assigned, "col2im overwrites where windows overlap: add (+=) every column entry back, do not assign")]


def _conv_bw_stage1(mod):
    x, w, _ = _conv_inputs(np.random.default_rng(0), (2, 3, 5, 5), (3, 3), 4, np.float32)
    grad = np.random.default_rng(1).normal(size=(2, 4, 3, 3)).astype(np.float32)
    copies = [a.copy() for a in (grad, x, w)]
    _conv_bw_shapes(grad, x, w, _conv_bw(mod, grad, x, w, (1, 1), (0, 0), (1, 1)), np.float32)
    for name, a, c in zip(("grad", "x", "weight"), (grad, x, w), copies):
        unmodified(name, c, a)


def _conv_bw_stage2(mod):
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    grad = np.array([[[[1.0, 2.0], [0.0, -1.0]]]])
    _, cache = textbook.conv2d_forward(x, w, np.zeros(1))
    edx, edw, edb = textbook.conv2d_backward(grad, cache)
    dx, dw, db = _conv_bw(mod, grad, x, w, (1, 1), (0, 0), (1, 1))
    _conv_bw_shapes(grad, x, w, (dx, dw, db))
    what = " for x = [[0, 1, 2], [3, 4, 5], [6, 7, 8]], kernel [[1, 0], [0, -1]], grad [[1, 2], [0, -1]]"
    compare("dbias" + what, edb, db)
    compare("dweight" + what, edw, dw)
    compare("dx" + what, edx, dx, _conv_bw_wrongs(grad, x, w, (1, 1), (0, 0), (1, 1)))


def _conv_bw_stage3(mod):
    rng = np.random.default_rng(9)
    for shape, k, s, p, d in CONV_CASES:
        x, w, b = _conv_inputs(rng, shape, k)
        out, cache = tb_conv(x, w, b, s, p, d)
        grad = rng.normal(size=out.shape)
        expected = textbook.conv2d_backward(grad, cache)
        what = f" for x {shape}, weight {w.shape}, stride {s}, padding {p}, dilation {d}"
        got = _conv_bw(mod, grad, x, w, s, p, d)
        _conv_bw_shapes(grad, x, w, got)
        compare("dbias" + what, expected[2], got[2])
        compare("dweight" + what, expected[1], got[1])
        compare("dx" + what, expected[0], got[0], _conv_bw_wrongs(grad, x, w, s, p, d))
        cols = tb_im2col(x, k, s, p, d)
        compare("col2im(im2col(x))" + what, textbook.col2im(cols.reshape(shape[1], *k, shape[0], *out.shape[2:]),
                                                            shape, k, s, ((p[0], p[0]), (p[1], p[1])), d),
                mod.col2im(cols, shape, k, s, p, d))


def _conv_bw_stage4(mod):
    rng = np.random.default_rng(10)
    s, p, d = (2, 1), (1, 1), (1, 2)
    x, w, b = _conv_inputs(rng, (2, 2, 4, 5), (2, 2), 3)
    u = rng.normal(size=tb_conv(x, w, b, s, p, d)[0].shape)
    dx, dw, db = _conv_bw(mod, u, x, w, s, p, d)

    def f():
        return float((tb_conv(x, w, b, s, p, d)[0] * u).sum())
    check_grad("dx", dx, f, x)
    check_grad("dweight", dw, f, w)
    check_grad("dbias", db, f, b)


EXERCISES = [
    Exercise("im2col", 2, "receptive fields as the columns of a matrix", ("im2col",), STUB_IM2COL,
             ("Pad first: xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))). Compute Ho and Wo.",
              "cols6 = np.empty((C, kH, kW, N, Ho, Wo)); for each (i, j): the slice "
              "xpad[:, :, i*dh : i*dh + sh*(Ho-1) + 1 : sh, j*dw : j*dw + sw*(Wo-1) + 1 : sw] is (N, C, Ho, Wo).",
              "cols6[:, i, j] = that slice transposed to (C, N, Ho, Wo); return cols6.reshape(C*kH*kW, N*Ho*Wo)."),
             ("minicnn.kernels.textbook:_offsets", "minicnn.kernels.textbook:im2col"),
             ((1, _im2col_stage1), (2, _im2col_stage2), (3, _im2col_stage3))),
    Exercise("conv2d_forward", 2, "through im2col and one matmul", ("conv2d_forward",), STUB_CONV_FORWARD,
             ("cols = im2col(x, kernel_size, stride, padding, dilation) with kernel_size = weight.shape[2:].",
              "out = weight.reshape(O, -1) @ cols is (O, N*Ho*Wo): reshape to (O, N, Ho, Wo), then "
              ".transpose(1, 0, 2, 3).",
              "Add bias.reshape(1, -1, 1, 1) when bias is not None; np.ascontiguousarray the result."),
             ("minicnn.kernels.textbook:conv2d_forward",),
             ((1, _conv_fw_stage1), (2, _conv_fw_stage2), (3, _conv_fw_stage3))),
    Exercise("conv2d_backward", 2, "dW, db, dx through col2im; stride, padding, dilation", ("col2im", "conv2d_backward"),
             STUB_CONV_BACKWARD,
             ("dbias = grad.sum(axis=(0, 2, 3)). grad2 = grad.transpose(1, 0, 2, 3).reshape(O, -1).",
              "dweight = (grad2 @ im2col(x, ...).T).reshape(weight.shape).",
              "col2im: dxpad = zeros of the padded shape; for each offset (i, j), add the (C, N, Ho, Wo) block "
              "cols.reshape(C, kH, kW, N, Ho, Wo)[:, i, j], transposed to (N, C, Ho, Wo), into the strided slice "
              "im2col read it from.",
              "dx = col2im(weight.reshape(O, -1).T @ grad2, x.shape, ...)."),
             ("minicnn.kernels.textbook:col2im", "minicnn.kernels.textbook:conv2d_backward"),
             ((1, _conv_bw_stage1), (2, _conv_bw_stage2), (3, _conv_bw_stage3), (4, _conv_bw_stage4))),
]

