"""The shape of the code, checked: imports flow one way, no import cycles, no late imports (but of
optional dependencies), no file past 500 lines, the engine and the textbook convolution small."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "minicnn"

#: Each top-level part of minicnn and its level: a module may import from its own part or from
#: lower levels only (backend, grad_mode, hooks <- {autograd, kernels} <- ops <- functional <- nn <- weights <-
#: architectures <- {training, onnx_export} <- CLIs). Parts of one level never import each other
#: (kernels never import autograd). weights (safetensors files) sits under architectures, whose
#: get(name, weights=path) loads one; distributed (data parallelism over MPI/NCCL) beside it, over
#: nn and data, under training, whose loop averages the gradients of a DistributedDataParallel model.
LEVELS = {
    "backend": 0, "checks": 0, "fileio": 0, "cli": 0, "grad_mode": 0, "hooks": 0,
    "autograd": 1, "kernels": 1, "data": 1, "checkpoint": 1,
    "ops": 2, "serialization": 2,
    "functional": 3, "gradcheck": 3,
    "nn": 4, "optim": 4,
    "weights": 5, "distributed": 5,
    "architectures": 6,
    "training": 7, "summary": 7, "onnx_export": 7,
    "train": 8, "predict": 8, "convert": 8, "visualize": 8,
}
#: Packages imported inside functions because they are optional (extras) or need a GPU.
OPTIONAL = {"cupy", "matplotlib", "PIL", "torch", "safetensors", "onnx", "onnxruntime", "mpi4py"}
#: Files allowed past 500 lines, with the reason.
LONG_FILES = {}


def modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield path, name, path.name == "__init__.py"


def imports_of(path, name, is_package):
    """(imported minicnn module, line, inside a function?) for every import in the file."""
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                targets = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            else:
                targets = [node.module]
        else:
            continue
        for target in targets:
            yield target, node.lineno, id(node) in inside


def part(module):
    """The top-level part of a minicnn module name ('minicnn.kernels.fast.conv' -> 'kernels')."""
    pieces = module.split(".")
    if len(pieces) > 2 and pieces[1] == "summary" and pieces[2] == "__main__":
        return "train"                     # python -m minicnn.summary: a command line
    return pieces[1] if len(pieces) > 1 else "minicnn"


def test_every_part_has_a_level():
    unknown = sorted({part(name) for _, name, _ in modules()} - set(LEVELS) - {"minicnn"})
    assert not unknown, f"add these parts of minicnn to LEVELS in {__file__}: {unknown}"


def test_imports_flow_one_way():
    wrong = []
    for path, name, is_package in modules():
        if name == "minicnn":
            continue                       # the package's __init__ gathers everything
        for target, line, _ in imports_of(path, name, is_package):
            if not target.startswith("minicnn.") or part(target) == part(name) or part(target) not in LEVELS:
                continue
            if LEVELS[part(target)] >= LEVELS.get(part(name), 99):
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target}")
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules():
    graph = {}
    names = {name for _, name, _ in modules()}
    for path, name, is_package in modules():
        deps = set()
        for target, _, late in imports_of(path, name, is_package):
            while target and target not in names:          # 'minicnn.ops.cat' -> the module 'minicnn.ops'
                target = target.rpartition(".")[0]
            if target and target != name and not late and not target.startswith(name + "."):
                deps.add(target)
        graph[name] = deps
    # a package importing its own submodules is not a cycle; anything else coming back is
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for dep in graph.get(node, ()):
            if node.startswith(dep + "."):
                continue                                      # a submodule reading its package's names
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_late_imports_are_only_of_optional_dependencies():
    late = [f"{path.relative_to(ROOT.parent)}:{line} imports {target} inside a function"
            for path, name, is_package in modules() for target, line, inside in imports_of(path, name, is_package)
            if inside and target.split(".")[0] not in OPTIONAL]
    assert not late, "\n".join(late)


def test_no_file_is_past_500_lines():
    long = {str(path.relative_to(ROOT.parent)): n for path, _, _ in modules()
            if (n := len(path.read_text().splitlines())) > 500 and str(path.relative_to(ROOT.parent)) not in LONG_FILES}
    assert not long, long


def test_the_engine_and_the_textbook_convolution_are_small():
    assert len((ROOT / "autograd.py").read_text().splitlines()) <= 350
    text = (ROOT / "kernels" / "textbook.py").read_text().splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("# ") and "convolution by im2col" in line)
    end = next(i for i, line in enumerate(text) if i > start and line.startswith("# ---"))
    assert end - start <= 80, f"the textbook convolution (im2col, col2im, forward, backward) has {end - start} lines"


@pytest.mark.parametrize("name", ["minicnn.kernels.textbook", "minicnn.kernels.fast.conv"])
def test_the_kernels_never_import_autograd(name):
    path = ROOT.parent / (name.replace(".", "/") + ".py")
    assert not [t for t, _, _ in imports_of(path, name, False) if t.startswith(("minicnn.autograd", "minicnn.ops"))]
