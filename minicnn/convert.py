"""Convert PyTorch weights to safetensors: ``python -m minicnn.convert resnet50.pth resnet50.safetensors``.

    python -m minicnn.convert resnet50-0676ba61.pth resnet50.safetensors --arch resnet50
    python -m minicnn.convert timm_vgg16.safetensors vgg16.safetensors --mapping timm --arch vgg16

Then ``architectures.get("resnet50", weights="resnet50.safetensors")`` loads them.

INPUT is a PyTorch checkpoint (``.pth``, ``.pt``, ``.bin``: ``torch.save`` of a state_dict, or of
a dict holding one under ``state_dict``, ``model_state_dict`` or ``model``) or a safetensors file
whose arrays NumPy cannot hold (bfloat16).  It needs PyTorch (``pip install torch``); minicnn
itself never does.  A ``.pth`` file is a pickle, and unpickling can run code, so it is read only
with ``torch.load(path, weights_only=True)``, which restores tensors and plain containers and
refuses anything else.  Keys that all start with ``module.`` (``nn.DataParallel``) lose that
prefix; bfloat16 tensors become float32 (NumPy has no bfloat16), other dtypes stay.
``--mapping timm`` renames timm's VGG head to torchvision's names (see ``minicnn.weights``).
``--arch NAME`` (with ``--num-classes``, ``--model-option KEY=VALUE``) first checks that the weights
load into that minicnn architecture; nothing is written if they do not.

Exit codes (the policy of :mod:`minicnn.cli`): 0 written; 1 the conversion failed (one line
``python -m minicnn.convert: error: ...`` says what and what to do, nothing is written; ``--debug``
or ``MINICNN_DEBUG=1`` adds the traceback); 2 bad command line (one line; nothing is read or written).
"""
from __future__ import annotations

import os
import re
import sys

import numpy as np

from . import architectures, cli
from .weights import MAPPINGS, save_weights

PROG = "python -m minicnn.convert"
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


ConversionError = cli.CommandError      # a runtime failure: the message says what failed and what to do


def make_parser():
    p = cli.ArgumentParser(
        prog=PROG, description="Convert a PyTorch checkpoint (a state_dict saved with torch.save) to a safetensors "
                               "file that minicnn.load_weights and architectures.get(name, weights=...) read. "
                               "Needs PyTorch; the .pth file is read with torch.load(weights_only=True) only.")
    p.add_argument("input", metavar="INPUT", help="the PyTorch checkpoint (.pth, .pt, .bin, .ckpt) or a bfloat16 "
                                                  ".safetensors file")
    p.add_argument("output", metavar="OUTPUT", help="the safetensors file to write (must end in .safetensors)")
    p.add_argument("--mapping", choices=sorted(MAPPINGS), help="rename keys from another library's names to "
                                                               "torchvision's (timm: VGG's head)")
    p.add_argument("--arch", choices=architectures.names(), help="check that the weights load into this minicnn "
                                                                 "architecture before writing")
    p.add_argument("--num-classes", type=cli.positive_int, metavar="N",
                   help="with --arch: the number of classes (default: the model's)")
    p.add_argument("--model-option", "-o", action="append", type=cli.parse_option, metavar="KEY=VALUE",
                   help="with --arch: a builder option, e.g. aux_logits=false (repeatable; as in train)")
    cli.add_debug_option(p)
    return p


def read_torch_state(path) -> tuple[dict, list]:
    """The name -> NumPy array dict in a PyTorch checkpoint (or safetensors file), and notes on what was done."""
    try:
        import torch
    except ImportError:
        raise ConversionError("reading a PyTorch checkpoint needs PyTorch, which is not installed. Install it where "
                              "you convert (pip install torch); minicnn itself never needs it") from None
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such file. Check the path")
    notes = []
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ConversionError("reading a safetensors file needs the safetensors package, which is not installed. "
                                  "pip install safetensors") from None
        try:
            obj = load_file(path)
        except Exception as exc:
            raise ConversionError(f"{path} is not a readable safetensors file ({exc}). It is damaged (truncated?) "
                                  "or in another format") from exc
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            # weights_only refused an object: pickle's UnpicklingError (matched by name: minicnn imports no pickle)
            if type(exc).__name__ == "UnpicklingError":
                found = re.search(r"GLOBAL (\S+)", str(exc))
                what = f"a Python object ({found.group(1)})" if found else "something"
                raise ConversionError(
                    f"{path} holds {what} besides tensors, and minicnn reads .pth files only with "
                    "torch.load(weights_only=True), which refuses it (unpickling can run code). Save the state_dict "
                    "alone, torch.save(model.state_dict(), path), from code you trust") from exc
            first = re.split(r"(?<=\.)\s", str(exc).strip(), maxsplit=1)[0] or "no detail"   # damaged, foreign
            raise ConversionError(f"{path} could not be read by torch.load ({type(exc).__name__}: {first}). It is "
                                  "damaged (truncated?) or not a PyTorch checkpoint: check the file") from exc
    if isinstance(obj, dict) and not _all_tensors(obj, torch):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), dict) and _all_tensors(obj[key], torch):
                notes.append(f"took the state_dict under {key!r}")
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ConversionError(f"{path} holds a {type(obj).__name__}, not a state_dict (a dict of tensors). Save one "
                              "with torch.save(model.state_dict(), path)")
    others = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if others:
        raise ConversionError(f"{path}: the state_dict's entries {', '.join(repr(k) for k in others[:5])} are not "
                              "tensors. Save model.state_dict() itself")
    if all(isinstance(k, str) and k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
        notes.append("removed the 'module.' prefix (nn.DataParallel)")
    state, widened = {}, []
    for key, tensor in obj.items():
        tensor = tensor.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
            widened.append(key)
        state[str(key)] = np.array(tensor.numpy())
    if widened:
        notes.append(f"cast {len(widened)} bfloat16 arrays to float32")
    return state, notes


def _all_tensors(d, torch) -> bool:
    return bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def check_fits(state, args) -> str:
    """Load ``state`` into a fresh minicnn ``args.arch`` (strict); returns a note, raises ConversionError."""
    options = dict(args.model_option or [])
    try:
        model = architectures.get(args.arch, num_classes=args.num_classes, **options)
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"cannot build {args.arch} with {options or 'its defaults'}: {exc}") from exc
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()
        detail = "; ".join(line.strip().rstrip(".") for line in first[1:4]) or first[0]
        raise ConversionError(f"the weights do not fit minicnn's {args.arch}: {detail}. Nothing was written; "
                              "pass the matching --num-classes / --model-option, or --mapping") from exc
    return f"checked: they load into minicnn's {args.arch}"


def run(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not args.output.endswith(".safetensors"):
        parser.error(f"OUTPUT must end in .safetensors, got {args.output!r}")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        parser.error("INPUT and OUTPUT are the same file")
    if (args.num_classes is not None or args.model_option) and not args.arch:
        parser.error("--num-classes and --model-option need --arch")
    if args.arch:
        problem = cli.check_options(args.arch, dict(args.model_option or []), architectures.builder_options(args.arch),
                                    reserved={"num_classes": "set it with --num-classes"})
        if problem:
            parser.error(problem)
    return cli.run_reporting(parser.prog, cli.debug_requested(args), lambda: _convert(args), expected=(ImportError,))


def _convert(args) -> int:
    state, notes = read_torch_state(args.input)
    if args.mapping:
        state = MAPPINGS[args.mapping](state)
        notes.append(f"renamed keys with the {args.mapping} mapping")
    if args.arch:
        notes.append(check_fits(state, args))
    save_weights(state, args.output, metadata={"converted_from": os.path.basename(args.input)})
    values = sum(int(a.size) for a in state.values())
    dtypes = ", ".join(sorted({str(a.dtype) for a in state.values()}))
    print(f"wrote {args.output}: {len(state)} arrays, {values:,} values ({dtypes})"
          + "".join(f"; {n}" for n in notes))
    return cli.EXIT_OK


def main(argv=None):
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
