"""The prior: a network ``f_θ``, its fixed input ``z`` and the per-step perturbation of ``z``."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Members", "Prior", "meshgrid_input", "noise_input"]


def noise_input(
    channels: int, shape: tuple[int, int], generator: torch.Generator, scale: float = 0.1
) -> torch.Tensor:
    """The paper's input: uniform noise in ``[0, scale)``, shape ``(1, channels, H, W)``.

    Examples
    --------
    >>> import torch
    >>> z = noise_input(32, (16, 16), torch.Generator().manual_seed(0))
    >>> z.shape, bool(z.min() >= 0), bool(z.max() < 0.1)
    (torch.Size([1, 32, 16, 16]), True, True)
    """
    return torch.rand((1, channels, *shape), generator=generator) * scale


def meshgrid_input(shape: tuple[int, int]) -> torch.Tensor:
    """Two channels holding the x and y coordinates in ``[0, 1]``: smooth fills for large holes.

    Examples
    --------
    >>> z = meshgrid_input((3, 3))
    >>> z.shape
    torch.Size([1, 2, 3, 3])
    >>> z[0, 0]  # x
    tensor([[0.0000, 0.5000, 1.0000],
            [0.0000, 0.5000, 1.0000],
            [0.0000, 0.5000, 1.0000]])
    """
    ys = torch.linspace(0, 1, shape[0])
    xs = torch.linspace(0, 1, shape[1])
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy])[None]


class Prior(nn.Module):
    """``x = f_θ(z + σ·ε)``, with fresh ``ε ~ N(0, 1)`` at every training step.

    The perturbation buffer is allocated once and refilled in place, so a step allocates no
    input memory; ``perturb_std = 0`` gives the plain ``f_θ(z)``.
    """

    def __init__(self, net: nn.Module, z: torch.Tensor, perturb_std: float = 0.0):
        super().__init__()
        self.net = net
        self.register_buffer("z", z)
        self.register_buffer("_noisy_z", z.clone())
        self.perturb_std = float(perturb_std)

    def forward(self, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.perturb_std <= 0:
            return self.net(self.z)
        self._noisy_z.normal_(generator=generator).mul_(self.perturb_std).add_(self.z)
        return self.net(self._noisy_z)


class Members(nn.Module):
    """Several priors fitted in lock-step as one: the output is their outputs stacked along
    the batch axis, so one problem with one observation per member (``y`` of batch size K)
    fits each to its own, with one optimiser (Adam is per parameter: the members do not
    interact) and one stop rule that can compare them."""

    def __init__(self, priors: list[Prior]):
        super().__init__()
        self.priors = nn.ModuleList(priors)

    def forward(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.cat([prior(generator) for prior in self.priors], dim=0)
