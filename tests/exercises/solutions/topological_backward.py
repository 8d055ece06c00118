"""Textbook solution of topological_backward (minicnn.autograd._topological_order and backward)."""


def backward(root):
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node.parents:
            if id(parent) not in visited:
                stack.append((parent, False))
    root.grad = 1.0
    for node in reversed(order):
        node._backward()
