"""``Dropout``: randomly zero activations during training (Srivastava et al., 2014)."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class Dropout(Module):
    """In training mode, zero each element with probability ``p`` and scale the rest by 1/(1-p);
    in evaluation mode (``model.eval()``), return the input unchanged.

    The mask comes from the device's default generator, so ``minicnn.manual_seed`` makes it
    reproducible.  ``inplace`` is accepted for PyTorch compatibility and ignored.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        if self.training and self.p == 1.0:      # drop everything (F.dropout needs p < 1 to scale by 1/(1-p))
            return input * 0.0
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
