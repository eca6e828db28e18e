"""The problem: observation ``y``, forward operator ``A`` and the data term ``E(A(x), y)``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .noise import Gaussian, NoiseModel
from .operators import Identity, Operator

__all__ = ["Problem", "total_variation"]


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation, mean absolute difference of neighbours (DIP-TV's term)."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dh + dw


@dataclass
class Problem:
    """Restore ``x`` from ``y = A(x) + noise``; ``noise`` gives the data term (default
    :class:`~.noise.Gaussian`: the squared error).

    ``y`` is ``(1, C, h, w)`` in the normalised range ``[0, 1]``. ``region`` is the part of the
    network's output the caller cares about (the rest is padding the network needs).
    """

    y: torch.Tensor
    operator: Operator = field(default_factory=Identity)
    tv_weight: float = 0.0
    region: tuple[slice, slice] = (slice(None), slice(None))
    noise: NoiseModel = field(default_factory=Gaussian)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The objective for a network output ``x``."""
        value = self.noise(self.operator(x), self.y)
        if self.tv_weight > 0:
            value = value + self.tv_weight * total_variation(x)
        return value

    def to(self, device: torch.device) -> Problem:
        return Problem(
            self.y.to(device), self.operator.to(device), self.tv_weight, self.region, self.noise
        )
