"""The problem: observation ``y``, forward operator ``A`` and the data term ``E(A(x), y)``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .noise import Gaussian, NoiseModel
from .operators import Identity, Operator

__all__ = ["Problem", "holdout_mask", "total_variation"]


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation, mean absolute difference of neighbours (DIP-TV's term).

    Examples
    --------
    >>> import torch
    >>> total_variation(torch.zeros(1, 1, 4, 4))  # flat: no variation
    tensor(0.)
    >>> total_variation(torch.tensor([[0.0, 1.0], [0.0, 1.0]]))  # one step, left to right
    tensor(1.)
    """
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dh + dw


def holdout_mask(observed: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """A random ``share`` of the observed pixels (``observed`` > 0, shape ``(1, 1 or C, ...)``),
    whole pixels across channels: 1 where a pixel is held out of the fit, else 0.

    Examples
    --------
    >>> import torch
    >>> observed = torch.ones(1, 1, 8, 8)
    >>> observed[..., :4] = 0  # the left half is not data
    >>> held = holdout_mask(observed, 0.25, torch.Generator().manual_seed(0))
    >>> held.shape, held[..., :4].sum().item(), sorted(held.unique().tolist())
    (torch.Size([1, 1, 8, 8]), 0.0, [0.0, 1.0])
    """
    spatial = observed.amax(dim=1, keepdim=True) > 0
    draw = torch.rand(spatial.shape, generator=generator) < share
    return (draw & spatial).to(torch.float32)


@dataclass
class Problem:
    """Restore ``x`` from ``y = A(x) + noise``; ``noise`` gives the data term (default
    :class:`~.noise.Gaussian`: the squared error).

    ``y`` is ``(1, C, h, w)`` in the normalised range ``[0, 1]``. ``region`` is the part of the
    network's output the caller cares about (the rest is padding the network needs).

    ``holdout`` (1 at held-out observed pixels, broadcastable to ``y``) keeps those pixels out
    of the fit: :meth:`loss` is then the mean data term over the others, and
    :meth:`validation` measures how well an output predicts the held-out ones — an error the
    fit never saw, which falls while the network learns the image and rises once it fits
    noise (self-validation, Li et al. 2021). ``observed`` (1 where ``y`` is data) says which
    pixels may count at all (inpainting, deconvolution's padding); None: all.
    """

    y: torch.Tensor
    operator: Operator = field(default_factory=Identity)
    tv_weight: float = 0.0
    region: tuple[slice, ...] = (slice(None), slice(None))
    noise: NoiseModel = field(default_factory=Gaussian)
    holdout: torch.Tensor | None = None
    observed: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self._train: torch.Tensor | None = None
        if self.holdout is not None:
            train = (
                torch.ones_like(self.y)
                if self.observed is None
                else self.observed.expand_as(self.y)
            )
            self._train = train * (1 - self.holdout)
            self._train_count = self._train.sum().clamp(min=1)
            self._held = self.holdout.expand_as(self.y).to(self.y.dtype)
            self._held_count = self._held.sum().clamp(min=1)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The objective for a network output ``x``."""
        if self._train is None:
            value = self.noise(self.operator(x), self.y)
        else:
            terms = self.noise.terms(self.operator(x), self.y)
            value = (terms * self._train).sum() / self._train_count
        if self.tv_weight > 0:
            value = value + self.tv_weight * total_variation(x)
        return value

    def validation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """For an output ``x`` (no gradient): the mean data term and the mean squared error
        over the held-out pixels, or None without a holdout."""
        if self._train is None:
            return None
        with torch.no_grad():
            prediction = self.operator(x)
            terms = self.noise.terms(prediction, self.y)
            data = (terms * self._held).sum() / self._held_count
            squared = (((prediction - self.y) ** 2) * self._held).sum() / self._held_count
        return data, squared

    def to(self, device: torch.device) -> Problem:
        return Problem(
            self.y.to(device),
            self.operator.to(device),
            self.tv_weight,
            self.region,
            self.noise,
            None if self.holdout is None else self.holdout.to(device),
            None if self.observed is None else self.observed.to(device),
        )
