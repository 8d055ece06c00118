"""A Keras-style summary of a model: one row per layer, with output shapes, parameters and mult-adds.

    from minicnn.summary import summary
    summary(model, (3, 224, 224))                  # prints the table, returns a ModelSummary

    python -m minicnn.summary resnet50                       # any name of minicnn.architectures
    python -m minicnn.summary lenet5 -o c3_table=true
    python -m minicnn.summary resnet18 --input 1,32,32 --num-classes 10

How it works: every leaf module (a module without sub-modules, or one that holds parameters
itself) gets its ``forward`` wrapped for the duration of one forward pass of a batch of one
zero image, under ``no_grad()`` in eval mode.  Each call of a wrapped layer adds a row (a
layer called three times, like ResNet's shared ``relu``, gets three rows; its parameters are
counted in the first).  Afterwards every forward, and every module's training flag, is put back.

Columns:

* parameters: the values a layer stores, as Keras counts them: its parameters (minus weights
  fixed at zero by a connection mask, see LeNet-5's C3) plus its floating-point persistent
  buffers (BatchNorm's ``running_mean`` and ``running_var``).  The buffers are *non-trainable*
  parameters, as in Keras; PyTorch's count (``sum(p.numel() for p in model.parameters())``) is
  the trainable count.  Integer buffers (``num_batches_tracked``) are not counted.
* mult-adds: multiply-accumulate operations for one image.  Conv2d:
  out_h * out_w * out_c * (in_c / groups) * kh * kw (only the unmasked connections for a masked
  conv);  Linear: in_features * out_features per output vector;  LeNet's Subsampling: one
  multiply per output value.  Bias additions, batch norm, pooling and activations count 0
  (the convention behind torchvision's "GFLOPS" column: 4.09 G for ResNet-50).

Layers of the model that the eval-mode forward does not call (GoogLeNet's auxiliary
classifiers) are listed at the end with no output shape, so that the rows add up to the totals.

(A package rather than a single file so that ``python -m minicnn.summary`` runs ``__main__.py``
without Python warning that ``minicnn`` already imported this module.)
"""
from __future__ import annotations

import argparse
import sys
import types
from dataclasses import dataclass, field

import numpy as np

from .. import architectures, backend, cli, nn
from ..autograd import Tensor, no_grad
from ..ops import zeros


@dataclass
class LayerRow:
    """One call of one leaf layer."""
    name: str
    type: str
    output_shape: tuple | None       # None: not called in the forward pass
    trainable: int = 0
    non_trainable: int = 0
    mult_adds: int = 0

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


@dataclass
class ModelSummary:
    """What ``summary`` measured; ``str()`` gives the table."""
    model_name: str
    input_shape: tuple
    rows: list = field(default_factory=list)
    trainable: int = 0              # parameters with requires_grad (PyTorch's usual count)
    frozen: int = 0                 # parameters with requires_grad=False
    buffers: int = 0                # floating persistent buffers (BatchNorm running statistics)
    masked: int = 0                 # stored weights fixed at zero by a connection mask (not counted)
    mult_adds: int = 0
    notes: list = field(default_factory=list)

    @property
    def total_params(self) -> int:
        """Keras' "Total params": trainable + non-trainable."""
        return self.trainable + self.non_trainable

    @property
    def non_trainable(self) -> int:
        return self.frozen + self.buffers

    @property
    def parameters(self) -> int:
        """PyTorch's count: every parameter value, trainable or not (no buffers)."""
        return self.trainable + self.frozen

    def __str__(self) -> str:
        return format_summary(self)


# --------------------------------------------------------------------------- counting

def _own_counts(module):
    """(trainable, non_trainable) values held directly by ``module`` (not its sub-modules)."""
    trainable = frozen = 0
    for p in module._parameters.values():
        if p is None:
            continue
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    masked = getattr(module, "masked_parameter_count", 0)
    if masked:           # fixed zeros of a connection mask are not parameters (they are all in `weight`)
        weight = module._parameters.get("weight")
        if weight is not None and weight.requires_grad:
            trainable -= masked
        else:
            frozen -= masked
    buffers = sum(b.numel() for name, b in module._buffers.items()
                  if b is not None and name not in module._non_persistent_buffers
                  and backend.is_floating(b.dtype))
    return trainable, frozen, buffers


def _mult_adds(module, inputs, output) -> int:
    """Multiply-accumulates of one call, per image of the batch (see the module docstring)."""

    if not isinstance(output, Tensor) or output.ndim == 0:
        return 0
    batch = output.shape[0] if output.ndim > 1 else 1
    if isinstance(module, nn.Conv2d):
        weight = module.weight
        mask = getattr(module, "mask", None)
        kh, kw = weight.shape[2:]
        per_pixel = (int(np.count_nonzero(backend.to_numpy(mask.data))) * kh * kw if mask is not None
                     else weight.shape[0] * weight.shape[1] * kh * kw)     # out_c * in_c/groups * kh * kw
        return per_pixel * output.shape[2] * output.shape[3]
    if isinstance(module, nn.Linear):
        vectors = output.numel() // output.shape[-1] // batch             # 1 for an (N, out) output
        return vectors * module.weight.shape[0] * module.weight.shape[1]
    if isinstance(module, getattr(nn, "Subsampling", ())):
        return output.numel() // batch
    return 0


def _shape_of(output):
    if isinstance(output, Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return tuple(_shape_of(o) for o in output)
    return None


def _leaves(model):
    """(name, module) of every module that gets a row: no sub-modules, or parameters of its own."""
    for name, module in model.named_modules():
        has_children = any(True for _ in module.children())
        if not has_children or any(p is not None for p in module._parameters.values()):
            yield name or type(module).__name__, module


# --------------------------------------------------------------------------- the summary

def summary(model, input_shape, device: str = "cpu", *, verbose: bool = True, dtype=None) -> ModelSummary:
    """Run ``model`` once on a zero batch of shape ``(1, *input_shape)`` and tabulate its layers.

    ``input_shape`` excludes the batch, e.g. ``(3, 224, 224)``.  The model must already be on
    ``device``.  Prints the table unless ``verbose=False``; returns a ``ModelSummary``.  The
    model is left as it was (training flags, forwards; no gradients, running statistics or
    random numbers are touched: eval mode, no_grad, zero input).
    """
    input_shape = tuple(int(s) for s in input_shape)
    device = backend.normalize_device(device)
    params = list(model.parameters())
    if params and params[0].device != device:
        raise ValueError(f"summary: the model is on {params[0].device!r} but device={device!r} was asked "
                         f"for; move it first with model.to({device!r})")
    dtype = dtype if dtype is not None else (params[0].dtype if params else None)

    result = ModelSummary(type(model).__name__, input_shape)
    leaves = list(_leaves(model))
    counted = set()                              # modules whose parameters are already in a row
    training = [(m, m.training) for m in model.modules()]
    wrapped = []

    def wrap(name, module):
        previous = module.__dict__.get("forward")     # an instance-level forward, if someone set one
        original = module.forward

        def forward(*args, **kwargs):
            output = original(*args, **kwargs)
            row = LayerRow(name, type(module).__name__, _shape_of(output),
                           mult_adds=_mult_adds(module, args, output))
            if id(module) not in counted:
                counted.add(id(module))
                row.trainable, frozen, buffers = _own_counts(module)
                row.non_trainable = frozen + buffers
            result.rows.append(row)
            return output

        module.forward = forward
        wrapped.append((module, previous))

    try:
        for name, module in leaves:
            wrap(name, module)
        model.eval()
        x = zeros((1,) + input_shape, dtype=dtype, device=device)
        with no_grad():
            model(x)
    finally:
        for module, previous in wrapped:
            del module.forward
            if previous is not None:
                module.forward = previous
        for module, mode in training:
            module.training = mode

    uncalled = []                                # layers the forward did not call (aux classifiers)
    for name, module in leaves:
        if id(module) not in counted:
            trainable, frozen, buffers = _own_counts(module)
            result.rows.append(LayerRow(name, type(module).__name__, None, trainable, frozen + buffers))
            top = name.split(".")[0]
            if top not in uncalled:
                uncalled.append(top)
    if uncalled:
        result.notes.append(f"{', '.join(uncalled)}: not called by the eval-mode forward (rows with no output "
                            "shape); their parameters are in the totals")

    for module in model.modules():
        result.masked += getattr(module, "masked_parameter_count", 0)
        trainable, frozen, buffers = _own_counts(module)
        result.trainable += trainable
        result.frozen += frozen
        result.buffers += buffers
    result.mult_adds = sum(row.mult_adds for row in result.rows)
    if verbose:
        print(result)
    return result


# --------------------------------------------------------------------------- formatting

def _si(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _fmt_shape(shape) -> str:
    if shape is None:
        return "--"
    if shape and isinstance(shape[0], tuple):
        return " ".join(_fmt_shape(s) for s in shape)
    return "[" + ", ".join(str(s) for s in shape) + "]"


def format_summary(s: ModelSummary) -> str:
    """The Keras-style table of a ``ModelSummary``."""
    header = ("Layer (name)", "Type", "Output shape", "Param #", "Mult-adds")
    body = [(r.name, r.type, _fmt_shape(r.output_shape), f"{r.params:,}", f"{r.mult_adds:,}") for r in s.rows]
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "=" * len(line(header))
    out = [f'Model: "{s.model_name}"   input: (1, {", ".join(map(str, s.input_shape))}) (batch of 1)',
           rule, line(header), rule]
    out += [line(cells) for cells in body]
    out += [rule,
            f"Total params: {s.total_params:,}",
            f"Trainable params: {s.trainable:,}",
            f"Non-trainable params: {s.non_trainable:,}",
            f"Total mult-adds: {_si(s.mult_adds)} ({s.mult_adds:,})",
            "-" * len(rule),
            f"Non-trainable params: BatchNorm running statistics (running_mean and running_var, "
            f"{s.buffers:,} values) and frozen parameters ({s.frozen:,}), as Keras counts them.",
            f"PyTorch's count (model.parameters(), requires_grad or not): {s.parameters:,}"
            + (f", not counting {s.masked:,} weights fixed at zero by a connection mask." if s.masked else "."),
            "Mult-adds per image: Conv2d and Linear weights (and one per Subsampling output); "
            "biases, batch norm, pooling and activations count 0."]
    out += [f"Note: {note}." for note in s.notes]
    if s.model_name == "LeNet5":
        out += ["", lenet5_arithmetic(s)]
    return "\n".join(out)


# --------------------------------------------------------------------------- LeNet-5's arithmetic

def lenet5_arithmetic(s: ModelSummary) -> str:
    """Check the per-layer parameter arithmetic of LeNet-5 against the measured rows.

    The article that the project follows gives 416 parameters for C3 and 3,000 for C5; both
    are wrong.  C3 has 16 * (6*5*5 + 1) = 2,416 with every S2 map connected to every C3 map
    (60*25 + 16 = 1,516 with the paper's Table I), and C5 has 120 * (16*5*5 + 1) = 48,120.
    """
    measured = {r.name: r.params for r in s.rows if r.output_shape is not None and r.params}
    c3 = measured.get("c3")
    c3_table = c3 == 60 * 25 + 16
    in_c = s.input_shape[0]
    checks = [
        ("C1", f"6 x ({in_c} x 5x5 + 1)", 6 * (in_c * 25 + 1), "c1", ""),
        ("S2", "6 x (1 coefficient + 1 bias)", 6 * 2, "s2", ""),
        (("C3", "60 connections x 5x5 + 16 biases (Table I)", 60 * 25 + 16, "c3",
          "full connectivity would be 16 x (6 x 5x5 + 1) = 2,416; the article's 416 is wrong")
         if c3_table else
         ("C3", "16 x (6 x 5x5 + 1)", 16 * (6 * 25 + 1), "c3",
          "the article says 416: wrong; with the paper's Table I: 60 x 25 + 16 = 1,516")),
        ("S4", "16 x (1 coefficient + 1 bias)", 16 * 2, "s4", ""),
        ("C5", "120 x (16 x 5x5 + 1)", 120 * (16 * 25 + 1), "c5", "the article says 3,000: wrong"),
        ("F6", "84 x (120 + 1)", 84 * 121, "f6", ""),
    ]
    out_rows = [r for r in s.rows if r.name == "output" and r.params]
    if out_rows:
        n_out = out_rows[0].params // 85
        checks.append(("Output", f"{n_out} x (84 + 1)", n_out * 85, "output", ""))
    lines = ["LeNet-5 parameter arithmetic (LeCun et al. 1998), checked against the model:"]
    total = 0
    for layer, formula, value, name, remark in checks:
        got = measured.get(name)
        total += value
        mark = "ok" if got == value else f"MISMATCH: model has {got}"
        lines.append(f"  {layer:<7}{formula:<46}= {value:>7,}   {mark}" + (f"   ({remark})" if remark else ""))
    lines.append(f"  {'Total':<7}{'':<46}= {total:>7,}   "
                 + ("ok" if total == s.parameters else f"MISMATCH: model has {s.parameters:,}"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line

def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,224,224, got {text!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,224,224, got {text!r}")
    return shape


def make_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m minicnn.summary",
        description="Print a Keras-style summary (layers, output shapes, parameters, mult-adds) "
                    "of one of minicnn's architectures.",
        epilog="Exit codes: 0 done, 1 error (e.g. --device cuda without a GPU), 2 bad options.")
    parser.add_argument("name", choices=architectures.names(), metavar="NAME",
                        help="architecture: " + ", ".join(architectures.names()))
    parser.add_argument("--input", type=_parse_shape, default=None, metavar="C,H,W",
                        help="input shape without the batch, e.g. 3,224,224 (default: the model's design size; "
                             "C also sets in_channels)")
    parser.add_argument("--num-classes", type=cli.positive_int, default=None, metavar="N",
                        help="number of classes (default: the model's own, 1000 or 10)")
    parser.add_argument("--option", "-o", type=cli.parse_option, action="append", default=[], metavar="KEY=VALUE",
                        help="extra builder option, e.g. c3_table=true, aux_logits=false, lrn=true (repeatable; "
                             "values as in python -m minicnn.train --model-option)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cpu or cuda (default: cpu)")
    cli.add_debug_option(parser)
    return parser


def main(argv=None) -> int:
    """``python -m minicnn.summary``: exit status 0, 1 (runtime error) or 2 (usage error), see :mod:`minicnn.cli`."""
    parser = make_parser()
    args = parser.parse_args(argv)
    options = dict(args.option)
    problem = cli.check_options(args.name, options, architectures.builder_options(args.name),
                                reserved={"num_classes": "set it with --num-classes"})
    if problem:
        parser.error(problem)
    shape = args.input or architectures.default_input_shape(args.name)
    if not args.input and "in_channels" in options:                  # -o in_channels=3: the input follows
        shape = (options["in_channels"], *shape[1:])
    options.setdefault("in_channels", shape[0])

    def body():
        device = backend.normalize_device(args.device)     # RuntimeError without CuPy or a GPU
        backend.manual_seed(0)
        try:
            model = architectures.get(args.name, num_classes=args.num_classes, **options)
        except (ValueError, TypeError) as exc:
            parser.error(cli.one_line(exc))
        model.to(device)
        try:
            summary(model, shape, device=device)
        except ValueError as exc:                           # e.g. an input the model cannot take
            parser.error(cli.one_line(exc))
        return cli.EXIT_OK
    return cli.run_reporting(parser.prog, cli.debug_requested(args), body, expected=(RuntimeError,),
                             memory_hint="use a smaller --input (or a smaller model)")


class _CallableModule(types.ModuleType):
    """Lets ``minicnn.summary(model, shape)`` work whether ``minicnn.summary`` names this module or the function."""

    def __call__(self, *args, **kwargs):
        return summary(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
