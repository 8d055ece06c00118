"""Textbook solution of sgd_momentum (minicnn.optim.SGD's update)."""


def sgd_step(param, grad, buf, lr, momentum, weight_decay):
    g = grad + weight_decay * param
    if momentum:
        buf = g.copy() if buf is None else momentum * buf + g
        g = buf
    param -= lr * g
    return buf if momentum else None
