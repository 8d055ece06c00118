"""Classify images with a trained model: ``python -m minicnn.predict RUN_DIR_OR_CHECKPOINT IMAGE.png [--topk 5]``.

    python -m minicnn.predict runs/lenet5-20250101-120000 digit.png
    python -m minicnn.predict runs/lenet5-20250101-120000/last.npz a.png b.png --topk 3

``RUN_DIR_OR_CHECKPOINT`` is a run folder written by ``python -m minicnn.train`` (its
``best.npz`` is used, else ``last.npz``) or one checkpoint file. The checkpoint's saved
configuration says how to prepare an image exactly as the test images were prepared:

1. Pillow reads the image; transparency is flattened onto white; it is converted to grey
   (``L``) or RGB, whichever the model takes (``in_channels``).
2. It is resized (bilinearly) to the dataset's native size (28x28 for MNIST and
   Fashion-MNIST, 32x32 for CIFAR-10), then padded or resized to the model's input size
   like the training images (e.g. 28 -> 32 by 2 pixels of background for LeNet-5).
3. **Inversion heuristic** (MNIST and Fashion-MNIST only): their images are light objects
   on a black background. If the image's border (its outermost row and column of pixels)
   is mostly light (median brightness above 50%), the picture is taken to be dark on a
   white background, such as a digit drawn on paper or in a paint program, and is
   inverted. ``--invert yes|no`` overrides the guess.
4. The training normalisation (mean, std) is applied.

Then the top-k classes are printed with their names (digits for MNIST, clothing names
for Fashion-MNIST, CIFAR-10's class names) and softmax probabilities.

Not done: MNIST's own centring (the digit's bounding box scaled to 20x20 and centred by
its centre of mass); crop your image around the digit, with some margin, for best results.
"""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from . import backend, checkpoint, cli
from . import functional as F
from .autograd import Tensor, no_grad
from .data import transforms as T
from .data.pipeline import make_transform
from .training.setup import build_model

#: The options of a training run's config that predicting needs.
CONFIG_KEYS = ["arch", "dataset", "num_classes", "in_channels", "image_size", "input_size", "mean", "std"]

#: Datasets whose images are light on a dark background (the inversion heuristic applies).
DARK_BACKGROUND = {"mnist", "fashion-mnist"}


def find_checkpoint(path):
    """A run folder -> its best.npz (else last.npz); a file -> itself."""
    if os.path.isdir(path):
        for name in ("best.npz", "last.npz"):
            candidate = os.path.join(path, name)
            if os.path.isfile(candidate):
                return candidate
        raise checkpoint.CheckpointError(f"{path}: no best.npz or last.npz in this folder; pass a run folder "
                                         "written by `python -m minicnn.train` or a checkpoint file")
    return path


def load_model(path, device="cpu"):
    """Load a training checkpoint: ``(model in eval mode, config, checkpoint state)``."""
    path = find_checkpoint(path)
    state = checkpoint.load(path)
    checkpoint.require(state, ["model", "config"], path)
    config = state["config"]
    if not isinstance(config, dict):
        raise checkpoint.CheckpointError(f"checkpoint {path}: its config is not a dict of options")
    checkpoint.require(config, CONFIG_KEYS, f"{path} (its config)")
    try:
        model = build_model(config, device)
    except (ValueError, TypeError, KeyError) as exc:
        raise checkpoint.CheckpointError(f"checkpoint {path}: its config does not describe a model minicnn "
                                         f"can build: {exc}") from None
    try:
        model.load_state_dict(state["model"])
    except (ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise checkpoint.CheckpointError(f"checkpoint {path}: its weights do not fit a {config['arch']} "
                                         f"model built from its own config: {exc}") from None
    model.eval()
    return model, config, state, path


class ImageError(ValueError):
    """An image file cannot be read (missing, not an image, too large to decode safely)."""


def pillow_image():
    """Pillow's ``Image`` module; a :class:`~minicnn.cli.CommandError` naming the extra without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise cli.CommandError("reading images needs Pillow: pip install Pillow (or pip install -e '.[image]')") from None
    return Image


def read_image(path, channels: int):
    """Read ``path`` with Pillow as a uint8 array (C, H, W), grey (C=1) or RGB (C=3), alpha on white.

    Raises :class:`ImageError` for a file that is missing, is not an image, or is larger than Pillow
    decodes safely (``Image.MAX_IMAGE_PIXELS``: a decompression bomb, e.g. a small PNG of 20000x20000
    pixels that would take gigabytes once decoded; Pillow's warning above that limit is an error here).
    """
    Image = pillow_image()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                    rgba = img.convert("RGBA")
                    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(white, rgba)
                img = img.convert("L" if channels == 1 else "RGB")
                array = np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"it is too large to decode safely ({exc}); shrink it first") from None
    except OSError as exc:           # missing, unreadable, not an image (PIL.UnidentifiedImageError), truncated
        raise ImageError(exc.strerror if isinstance(exc, FileNotFoundError) else str(exc)) from None
    except (ValueError, SyntaxError) as exc:       # broken image data Pillow reports otherwise
        raise ImageError(f"the image data is damaged ({type(exc).__name__}: {exc})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def should_invert(image) -> bool:
    """True when the image's border is mostly light: a dark drawing on a white background."""
    grey = image.astype(np.float32).mean(axis=0) / 255.0
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return bool(np.median(border) > 0.5)


def prepare(image, config, invert="auto"):
    """One uint8 image (C, H, W) -> the float32 batch (1, C, S, S) the model takes; also says if it inverted."""
    native = config["image_size"]
    batch = T.Resize(native, mode="bilinear")(image[None])
    inverted = False
    if config["dataset"] in DARK_BACKGROUND:
        inverted = should_invert(batch[0]) if invert == "auto" else invert == "yes"
    if inverted:
        batch = 255 - batch
    return make_transform(config, train=False)(batch), inverted


def predict(model, x, device="cpu"):
    """Softmax probabilities (N, classes) of the batch ``x`` as a NumPy array."""
    with no_grad():
        logits = model(Tensor(x, device=device))
        return backend.to_numpy(F.softmax(logits, dim=1).data)


def make_parser():
    p = cli.ArgumentParser(
        prog="python -m minicnn.predict",
        description="Print the top-k classes and probabilities of a trained model for one or more images. "
                    "Images are read with Pillow, converted to grey or RGB as the model needs, resized to the "
                    "training images' size and normalised like them. For MNIST / Fashion-MNIST models an image "
                    "whose border is mostly light (dark drawing on white) is inverted to MNIST's light-on-black "
                    "(see --invert).",
        epilog="Exit codes: 0 done, 1 error (a bad checkpoint, or an image that cannot be read: the other images "
               "are still classified), 2 bad options.")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT",
                   help="run folder of python -m minicnn.train (uses best.npz, else last.npz) or a .npz checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image file(s): PNG, JPEG, ... (anything Pillow reads)")
    p.add_argument("--topk", type=cli.positive_int, default=5, help="how many classes to print (default: 5)")
    p.add_argument("--invert", choices=["auto", "yes", "no"], default="auto",
                   help="invert the image (MNIST-style models only): auto = when its border is mostly light "
                        "(default: auto)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run the model (default: cpu)")
    cli.add_debug_option(p)
    return p


def run(argv=None) -> int:
    """The command line; returns the exit code (see :mod:`minicnn.cli`)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    debug = cli.debug_requested(args)
    return cli.run_reporting(parser.prog, debug, lambda: _run(args, parser.prog, debug),
                             expected=(checkpoint.CheckpointError,))


def _run(args, prog, debug) -> int:
    pillow_image()                                   # missing Pillow: one line, before the model is loaded
    try:
        device = backend.normalize_device(args.device)
    except RuntimeError as exc:                      # --device cuda without CuPy or a GPU
        raise cli.CommandError(exc) from exc
    model, config, state, path = load_model(args.checkpoint, device)
    classes = config.get("classes") or [str(i) for i in range(config["num_classes"])]
    k = min(args.topk, len(classes))
    acc = state.get("history", [{}])[-1].get("test_acc") if state.get("history") else None
    print(f"model: {config['arch']} trained on {config['dataset']} ({path}, epoch {state.get('epoch', '?')}"
          + (f", test accuracy {100 * acc:.2f}%" if acc is not None else "") + ")")
    status = cli.EXIT_OK
    for image_path in args.images:
        try:
            image = read_image(image_path, config["in_channels"])
        except ImageError as exc:           # that image only: the others are still classified
            status = cli.report(prog, f"cannot read image {image_path}: {exc}", debug)
            continue
        x, inverted = prepare(image, config, args.invert)
        probs = predict(model, x, device)[0]
        order = np.argsort(-probs, kind="stable")[:k]
        print(f"\n{image_path} ({image.shape[2]}x{image.shape[1]}, {'grey' if image.shape[0] == 1 else 'RGB'}"
              f"{', inverted' if inverted else ''})")
        print(f"  {'rank':>4}  {'class':<16} {'probability':>11}")
        for rank, c in enumerate(order, 1):
            name = classes[c] if classes[c] == str(c) else f"{c} {classes[c]}"
            print(f"  {rank:>4}  {name:<16} {100 * probs[c]:10.2f}%")
    return status


def main(argv=None):
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
