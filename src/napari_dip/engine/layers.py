"""Spectral-bias controls (Shi, Mettes, Maji, Snoek, IJCV 2022) as plain torch layers.

* :class:`LipschitzBound` / :func:`bound_lipschitz`: a convolution weight used as
  ``W / max(1, σ_max(W)/λ)``, ``σ_max`` the largest singular value of ``W`` reshaped to
  ``(out, in·k·k)``, estimated by one power iteration per training forward.
* :class:`MeanOnlyBatchNorm2d`: batch normalisation that subtracts the mean but does not divide
  by the standard deviation. Plain BatchNorm after a convolution is invariant to the
  convolution's scale, so it would undo the Lipschitz bound; this one keeps it.
* :class:`GaussianUpsample`: ×2 upsampling by a transposed depthwise convolution with a fixed
  Gaussian kernel; a small σ lets high frequencies through (fast fitting), a large σ smooths.

All three work on 2D (``Conv2d``, ``(N, C, H, W)``) and 3D (``Conv3d``, ``(N, C, D, H, W)``)
networks alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

__all__ = [
    "GaussianUpsample",
    "LipschitzBound",
    "MeanOnlyBatchNorm2d",
    "bound_lipschitz",
    "gaussian_taps",
]


class LipschitzBound(nn.Module):
    """Parametrisation ``W ↦ W / max(1, σ_max(W)/λ)`` for :func:`register_parametrization`.

    Like ``torch.nn.utils.parametrizations.spectral_norm``: persistent singular-vector
    estimates ``u``, ``v`` (buffers, so they follow ``.to(device)`` and the state dict), one
    power iteration per forward in training mode, none in eval mode. The gradient flows
    through ``σ = uᵀ W v``. A weight with ``σ_max ≤ λ`` is returned unchanged, bit for bit.
    """

    def __init__(self, weight: torch.Tensor, lam: float, warmup: int = 200, eps: float = 1e-12):
        super().__init__()
        if not lam > 0:
            raise ValueError(f"the Lipschitz bound must be positive, got {lam!r}")
        self.lam = float(lam)
        self.eps = float(eps)
        mat = weight.detach().flatten(1)
        # Random start (drawn from the global RNG: deterministic under build_prior's seed).
        u = F.normalize(torch.randn(mat.shape[0], dtype=mat.dtype, device=mat.device), dim=0)
        self.register_buffer("_u", u)
        self.register_buffer("_v", F.normalize(mat.t() @ u, dim=0, eps=self.eps))
        self.power_iteration(mat, warmup)

    @torch.no_grad()
    def power_iteration(self, mat: torch.Tensor, n: int = 1) -> None:
        for _ in range(n):
            self._u.copy_(F.normalize(mat @ self._v, dim=0, eps=self.eps))
            self._v.copy_(F.normalize(mat.t() @ self._u, dim=0, eps=self.eps))

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """The current estimate of ``σ_max(weight)`` (no power iteration)."""
        # Clones: the buffers change in place at the next forward, autograd must not see that.
        # Float32 even under autocast: σ's precision sets the bound, and u, v are float32.
        with torch.autocast(weight.device.type, enabled=False):
            return torch.dot(self._u.clone(), weight.float().flatten(1) @ self._v.clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.power_iteration(weight.detach().flatten(1))
        return weight / torch.clamp(self.sigma(weight) / self.lam, min=1.0)

    def extra_repr(self) -> str:
        return f"lam={self.lam}"


def bound_lipschitz(module: nn.Module, lam: float) -> nn.Module:
    """Put a :class:`LipschitzBound` on the weight of every ``Conv2d``/``Conv3d`` inside
    ``module`` (a 3D kernel is reshaped to ``(out, in·k·k·k)`` the same way).

    Leave out layers that must stay free (the output 1×1 convolution) by not passing them.
    Returns ``module``.

    Examples
    --------
    A 1×1 convolution of weight 3 (so ``σ_max`` = 3) bounded to λ = 1:

    >>> import torch
    >>> from torch import nn
    >>> conv = nn.Conv2d(1, 1, kernel_size=1, bias=False)
    >>> with torch.no_grad():
    ...     _ = conv.weight.fill_(3.0)
    >>> net = bound_lipschitz(nn.Sequential(conv, nn.ReLU()), lam=1.0)
    >>> net[0].parametrizations.weight[0]
    LipschitzBound(lam=1.0)
    >>> net[0].weight.detach().item()
    1.0
    """
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Conv3d)]
    for conv in convs:
        parametrize.register_parametrization(conv, "weight", LipschitzBound(conv.weight, lam))
    return module


class MeanOnlyBatchNorm2d(nn.Module):
    """``x − mean + β`` per channel: the batch mean in training, a running mean in eval.

    The mean is over the batch and every spatial axis, so the same layer serves 2D
    ``(N, C, H, W)`` and 3D ``(N, C, D, H, W)`` inputs.
    """

    def __init__(self, channels: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = float(momentum)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean(dim=(0, *range(2, x.ndim)))
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
        else:
            mean = self.running_mean
        return x - (mean - self.bias).view(1, -1, *(1,) * (x.ndim - 2))


def gaussian_taps(sigma: float, radius: int = 3) -> torch.Tensor:
    """1D ×2 transposed-convolution kernel: a Gaussian sampled at half-pixel offsets.

    ``2·radius`` taps at ``±0.5, ±1.5, …`` output pixels from the input pixel's centre (which
    lies between output pixels ``2i`` and ``2i + 1``, as in bilinear upsampling with
    ``align_corners=False``), normalised so each output phase sums to 1: constants are kept.
    An odd kernel (5 taps) cannot be centred that way, it would shift the image by a quarter
    of an input pixel. σ is in output pixels; σ → 0 gives nearest-neighbour, σ ≈ 1 is close to
    bilinear.
    """
    if not sigma > 0:
        raise ValueError(f"Gaussian upsampling needs sigma > 0, got {sigma!r}")
    offsets = torch.arange(2 * radius, dtype=torch.float64) - radius + 0.5
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    # The two phases (every other tap) are mirror images of each other, so their sums match.
    return (taps / taps[::2].sum()).to(torch.float32)


class GaussianUpsample(nn.Module):
    """×2 upsampling: transposed depthwise convolution with a fixed Gaussian kernel.

    The kernel (``2·radius`` square, separable) is a buffer, not a parameter. The input is
    edge-padded by one pixel first, so the output is exactly twice the input's size with no
    dark frame from zero padding, and a constant image stays constant.

    ``dims=3`` takes ``(N, C, D, H, W)``: with ``upsample_z`` the kernel is a separable cube
    and every axis doubles; without, ``D`` is kept and each slice is upsampled in 2D (the
    3D networks leave a short Z axis alone at their coarse scales).
    """

    def __init__(self, sigma: float, radius: int = 3, dims: int = 2, upsample_z: bool = True):
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims!r}")
        self.sigma = float(sigma)
        self.radius = int(radius)
        self.dims = int(dims)
        self.upsample_z = bool(upsample_z)
        taps = gaussian_taps(self.sigma, self.radius)
        kernel = torch.outer(taps, taps)
        if dims == 3 and upsample_z:
            kernel = taps[:, None, None] * kernel[None]
        self.register_buffer("kernel", kernel[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 3 and not self.upsample_z:
            n, c, d, h, w = x.shape
            flat = x.transpose(1, 2).reshape(n * d, c, h, w)
            y = self._up(flat, F.conv_transpose2d)
            return y.reshape(n, d, c, 2 * h, 2 * w).transpose(1, 2)
        conv = F.conv_transpose3d if self.dims == 3 else F.conv_transpose2d
        return self._up(x, conv)

    def _up(self, x: torch.Tensor, conv: Callable[..., torch.Tensor]) -> torch.Tensor:
        c, sizes = x.shape[1], x.shape[2:]
        r = self.radius
        pad = r // 2  # input pixels outside the image that reach an output pixel
        weight = self.kernel.to(x.dtype).expand(c, 1, *self.kernel.shape[2:])
        padded = F.pad(x, (pad,) * (2 * len(sizes)), mode="replicate")
        y = conv(padded, weight, stride=2, groups=c)
        # Padded input pixel m lands at output 2m + r − 0.5 …; unpadded pixel 0 is m = pad.
        start = 2 * pad + r - 1
        return y[(..., *(slice(start, start + 2 * n) for n in sizes))]

    def extra_repr(self) -> str:
        if self.dims == 2:
            return f"sigma={self.sigma}"
        return f"sigma={self.sigma}, dims=3, upsample_z={self.upsample_z}"
