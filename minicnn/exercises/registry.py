"""The exercises in the tutorial's order (the names are fixed: the tutorial's chapters name them)."""
from __future__ import annotations

import difflib

from . import ch1_autograd, ch2_conv, ch3_norm, ch3_pool, ch4_training

EXERCISES = (ch1_autograd.EXERCISES + ch2_conv.EXERCISES + ch3_pool.EXERCISES
             + ch3_norm.EXERCISES + ch4_training.EXERCISES)
NAMES = [e.name for e in EXERCISES]
_BY_NAME = {e.name: e for e in EXERCISES}


def get(name):
    """The :class:`~minicnn.exercises.common.Exercise` called ``name``; ``ValueError`` naming the closest one else."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), NAMES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown exercise {name!r}{hint}; the exercises: {', '.join(NAMES)}") from None
