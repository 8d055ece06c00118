"""The checker recognises the common wrong answers: each planted wrong solution (a textbook solution from
``solutions/`` with one mistake put in) fails at its intended stage with its intended message."""
import os
import shutil

import pytest

from minicnn import exercises

SOLUTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "solutions")

RECURSIVE_TOPO = '''
def backward(root):
    order, seen = [], set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent in node.parents:
            visit(parent)
        order.append(node)
    visit(root)
    root.grad = 1.0
    for node in reversed(order):
        node._backward()
'''
BFS_TOPO = '''
def backward(root):
    order, seen, queue = [root], {id(root)}, [root]
    while queue:
        node = queue.pop(0)
        for parent in node.parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                order.append(parent)
                queue.append(parent)
    root.grad = 1.0
    for node in order:
        node._backward()
'''
LATE_DECAY_SGD = '''
def sgd_step(param, grad, buf, lr, momentum, weight_decay):
    g = grad
    if momentum:
        buf = g.copy() if buf is None else momentum * buf + g
        g = buf
    param -= lr * (g + weight_decay * param)
    return buf if momentum else None
'''
CLASSIC_SGD = '''
def sgd_step(param, grad, buf, lr, momentum, weight_decay):
    g = grad + weight_decay * param
    buf = -lr * g if buf is None else momentum * buf - lr * g
    param += buf
    return buf
'''

#: (exercise, the edits that plant the mistake ((old, new) pairs, or a whole file), the stage it must fail at,
#: words its message must hold)
CASES = [
    ('numerical_derivative', [('flat[i] = old - h\n        minus = f(x)\n        flat[i] = old\n        g[i] = (plus - minus) / (2 * h)', 'flat[i] = old\n        minus = f(x)\n        g[i] = (plus - minus) / h')],
     2, 'one-sided difference'),
    ('numerical_derivative', [('(2 * h)', 'h')],
     2, 'twice the derivative'),
    ('numerical_derivative', [('        flat[i] = old\n        g[i]', '        g[i]')],
     1, 'restore each element'),
    ('numerical_derivative', [('range(flat.size)', 'range(len(x))')],
     3, 'one element at a time over all of x.size'),
    ('mul_broadcast', [('return sum_to(grad * self.b, self.a.shape), sum_to(grad * self.a, self.b.shape)', 'return grad * self.b, grad * self.a')],
     1, 'summed over the axes it was broadcast along'),
    ('mul_broadcast', [('return sum_to(grad * self.b, self.a.shape), sum_to(grad * self.a, self.b.shape)', 'return sum_to(grad * self.a, self.a.shape), sum_to(grad * self.a, self.b.shape)')],
     2, 'the other input'),
    ('mul_broadcast', [('grad.sum(axis=axes)', 'grad.mean(axis=axes)')],
     2, 'do not average'),
    ('tanh_function', [('self.y = np.tanh(x)', 'self.x, self.y = x, np.tanh(x)'), ('grad * (1 - self.y * self.y)', 'grad * (1 - self.x * self.x)')],
     2, 'uses the output y'),
    ('tanh_function', [('return grad * (1 - self.y * self.y)', 'return (1 - self.y * self.y)')],
     2, 'by the incoming grad'),
    ('tanh_function', [('grad * (1 - self.y * self.y)', 'grad * (1 - self.y)')],
     2, '1 - y^2 (y squared)'),
    ('tanh_function', [('self.y = np.tanh(x)', 'e = np.exp(x)\n        self.y = (e - 1 / e) / (e + 1 / e)')],
     3, 'exp overflows'),
    ('tanh_function', [('self.y = np.tanh(x)', 'self.y = np.tanh(x.astype(np.float64))')],
     1, 'dtype float64, expected float32'),
    ('topological_backward', [('    root.grad = 1.0\n', '')],
     1, 'seed it with root.grad = 1.0'),
    ('topological_backward', [('        if id(node) in visited:\n            continue\n', '')],
     3, 'visited set'),
    ('topological_backward', [('for node in reversed(order)', 'for node in order')],
     1, 'reverse topological order'),
    ('topological_backward', RECURSIVE_TOPO,
     3, 'explicit stack'),
    ('topological_backward', BFS_TOPO,
     3, 'reverse topological order'),
    ('im2col', [('return cols.reshape(C * kh * kw, N * Ho * Wo)', 'return cols.reshape(C * kh * kw, N * Ho * Wo).T')],
     1, 'transpose'),
    ('im2col', [('cols = np.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)', 'cols = np.empty((kh, kw, C, N, Ho, Wo), dtype=x.dtype)'), ('cols[:, i, j] = block', 'cols[i, j] = block')],
     3, 'rows are in the wrong order'),
    ('im2col', [('cols[:, i, j] = block.transpose(1, 0, 2, 3)', 'cols[:, i, j] = block.transpose(1, 2, 3, 0).reshape(C, N, Ho, Wo)')],
     3, 'columns are in the wrong order'),
    ('im2col', [('block = xpad[:, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh, j * dw:j * dw + sw * (Wo - 1) + 1:sw]', 'block = xpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]')],
     3, 'dilation is ignored'),
    ('im2col', [('xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))\n', 'xpad = x\n    H, W = H - 2 * ph, W - 2 * pw\n')],
     3, 'without the padding'),
    ('conv2d_forward', [('        out = out + bias.reshape(1, -1, 1, 1)\n', '        pass\n')],
     2, 'bias is missing'),
    ('conv2d_forward', [('weight.reshape(O, -1) @ cols', 'weight[:, :, ::-1, ::-1].reshape(O, -1) @ cols')],
     2, 'kernel is flipped'),
    ('conv2d_forward', [('.reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)', '.reshape(N, O, Ho, Wo)')],
     3, 'reshaped straight'),
    ('conv2d_forward', [('out + bias.reshape(1, -1, 1, 1)', 'out + bias.reshape(1, -1, 1, 1).astype(np.float64)')],
     1, 'has dtype float64'),
    ('conv2d_backward', [('db = grad.sum(axis=(0, 2, 3))', 'db = grad.sum(axis=(2, 3))')],
     1, 'sum over the batch and spatial axes'),
    ('conv2d_backward', [('weight.reshape(O, -1).T @ grad2', 'weight.reshape(-1, O) @ grad2')],
     3, 'not transposed'),
    ('conv2d_backward', [('] += \\', '] = \\')],
     2, 'col2im overwrites'),
    ('conv2d_backward', [('return dxpad[:, :, ph:ph + H, pw:pw + W]', 'return dxpad')],
     3, 'cut the padding off'),
    ('relu', [('x > 0', 'x >= 0')],
     2, 'the mask is x > 0'),
    ('relu', [('return grad * cache', 'return cache.astype(grad.dtype)')],
     2, 'do not return the mask'),
    ('relu', [('return np.maximum(x, 0), x > 0', 'return np.maximum(x, 0, out=x), x > 0')],
     1, 'in place'),
    ('max_pool', [('(windows.argmax(axis=0), x.shape', '(windows == windows.max(axis=0), x.shape'), ('grad * (argmax == k)', 'grad * argmax[k]')],
     2, 'FIRST maximum'),
    ('max_pool', [('dx[:, :, r, c] += grad * (argmax == k)', 'dx[:, :, r, c] = np.where(argmax == k, grad, dx[:, :, r, c])')],
     3, 'only where windows overlap'),
    ('max_pool', [('dx[:, :, r, c] += grad * (argmax == k)', 'dx[:, :, r, c] += grad / (kernel_size[0] * kernel_size[1])')],
     2, 'not spread over the window'),
    ('avg_pool_backward', [('share = grad / (kh * kw)', 'share = grad')],
     2, "divides by the window's size"),
    ('avg_pool_backward', [('] += share', '] = share')],
     3, 'only where windows overlap'),
    ('avg_pool_backward', [('share = grad / (kh * kw)', 'share = grad / kh')],
     2, 'not by kH'),
    ('batch_norm', [('    if training:\n        dx = scale', '    if False:\n        dx = scale')],
     2, 'misses the terms through the batch mean and variance'),
    ('batch_norm', [('var * m / (m - 1)', 'var')],
     2, 'UNBIASED'),
    ('batch_norm', [('(1 - momentum) * running_mean + momentum * mean', 'momentum * running_mean + (1 - momentum) * mean')],
     2, 'weights the NEW statistic'),
    ('batch_norm', [('    if training:\n        mean, var', '    if True:\n        mean, var')],
     2, 'normalise with running_mean and running_var'),
    ('batch_norm', [('mean, var = x.mean(axis=axes), x.var(axis=axes)', 'mean, var = x.mean(axis=axes), x.var(axis=axes, ddof=1)')],
     2, 'BIASED variance'),
    ('batch_norm', [('running_mean[...] =', 'running_mean =')],
     2, 'were not updated'),
    ('dropout', [('mask = np.multiply(keep, 1.0 / (1.0 - p), dtype=x.dtype)', 'mask = keep.astype(x.dtype)')],
     2, 'by 1 / (1 - p)'),
    ('dropout', [('rng.random(x.shape) >= p', 'rng.random(x.shape) < p')],
     3, 'probability of DROPPING'),
    ('dropout', [('rng.random(x.shape)', 'np.random.random(x.shape)')],
     3, 'from the rng you are given'),
    ('dropout', [('if not training or p == 0:', 'if p == 0:')],
     2, '(the identity)'),
    ('dropout', [('grad if mask is None else grad * mask', 'grad if mask is None else grad * (mask != 0)')],
     3, 'SCALED mask'),
    ('linear', [('def linear_backward(grad, x, weight):', 'def linear_backward(grad, cache):')],
     1, 'linear_backward must take (grad, x, weight), as in the stub; yours takes (grad, cache)'),
    ('tanh_function', [('def backward(self, grad):', 'def backward(self):')],
     1, 'Tanh.backward must take (grad)'),
    ('linear', [('grad.T @ x', 'x.T @ grad')],
     1, '(in, out)'),
    ('linear', [('grad.sum(axis=0)', 'grad')],
     1, 'sum grad over the batch'),
    ('linear', [('return out if bias is None else out + bias', 'return out')],
     2, 'bias is missing'),
    ('linear', [('grad.sum(axis=0)', 'grad.mean(axis=0)')],
     3, 'do not average'),
    ('softmax_cross_entropy', [('return loss, d / n', 'return loss, d')],
     2, 'N times too large'),
    ('softmax_cross_entropy', [('logp = logits - logits.max(axis=1, keepdims=True)', 'logp = logits * 1.0')],
     3, 'subtract the row maximum first'),
    ('softmax_cross_entropy', [('.mean())', '.sum())')],
     2, 'MEAN over the batch'),
    ('softmax_cross_entropy', [('return loss, d / n', 'return loss, -d / n')],
     2, 'sign is reversed'),
    ('sgd_momentum', [('param -= lr * g', 'param = param - lr * g')],
     1, 'update it in place'),
    ('sgd_momentum', LATE_DECAY_SGD,
     2, 'BEFORE the momentum'),
    ('sgd_momentum', [('momentum * buf + g', 'momentum * buf + (1 - momentum) * g')],
     2, 'no (1 - momentum) factor'),
    ('sgd_momentum', CLASSIC_SGD,
     2, 'gradient units'),
    ('sgd_momentum', [('g = grad + weight_decay * param', 'grad += weight_decay * param\n    g = grad')],
     2, 'changed its input grad in place'),
    ('sgd_momentum', [('return buf if momentum else None', 'return None')],
     1, 'return the momentum buffer'),
]


def planted(case, folder):
    """Write the textbook solution of the case's exercise with its mistake into ``folder`` (and the
    correct im2col.py beside it, which the convolutions import)."""
    name, edits = case[:2]
    text = open(os.path.join(SOLUTIONS, name + ".py")).read()
    if isinstance(edits, str):
        text = edits
    for old, new in [] if isinstance(edits, str) else edits:
        assert old in text, f"{name}: the planted mistake's text {old!r} is not in the solution"
        text = text.replace(old, new)
    with open(os.path.join(folder, name + ".py"), "w") as f:
        f.write(text)
    if name != "im2col":
        shutil.copy(os.path.join(SOLUTIONS, "im2col.py"), folder)


def test_there_are_at_least_30_planted_wrong_answers_covering_every_exercise():
    assert len(CASES) >= 30
    assert {c[0] for c in CASES} == set(exercises.NAMES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_wrong_answer_fails_at_its_stage_with_its_message(case, tmp_path):
    planted(case, tmp_path)
    stage, words = case[2:]
    result = exercises.check_file(case[0], str(tmp_path))
    assert not result.passed
    assert (result.stage, words in result.message) == (stage, True), result.line()
    assert "\n" not in result.message.split(":")[0]
