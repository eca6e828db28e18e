"""The blurriness/sharpness plateau rule (Shi et al., IJCV 2022)."""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F

from .base import StopRule

__all__ = ["SharpnessRatio", "blurriness", "sharpness"]


def _grey(x: torch.Tensor) -> torch.Tensor:
    """``(C, H, W)`` or ``(H, W)`` → ``(1, 1, H, W)`` float32 grey (channel mean)."""
    x = x.to(torch.float32)
    if x.dim() == 3:
        x = x.mean(0)
    return x[None, None]


def blurriness(x: torch.Tensor, size: int = 9) -> torch.Tensor:
    """Crété-Roffet et al. (2007) perceptual blur of the grey image, in ``[0, 1]`` (0 = sharp).

    Blur the image with a ``1 × size`` box filter along each axis; compare the absolute
    neighbour differences of the image (``D_F``) and of its blurred copy (``D_B``):
    ``D_V = max(0, D_F − D_B)``, ``b = (ΣD_F − ΣD_V) / ΣD_F`` per axis; the result is the larger
    of the two. A sharp image loses much variation when blurred (b small), a blurry one little.
    Returns a 0-d tensor on the input's device.
    """
    g = _grey(x)
    pad = size // 2
    results = []
    axes = ((2, (1, 1, size, 1), (0, 0, pad, pad)), (3, (1, 1, 1, size), (pad, pad, 0, 0)))
    for dim, kernel_shape, padding in axes:
        kernel = torch.full(kernel_shape, 1.0 / size, device=g.device)
        blurred = F.conv2d(F.pad(g, padding, mode="replicate"), kernel)
        d_f = g.diff(dim=dim).abs()
        d_b = blurred.diff(dim=dim).abs()
        s_f = d_f.sum()
        s_v = (d_f - d_b).clamp_min(0).sum()
        results.append((s_f - s_v) / s_f.clamp_min(1e-12))
    return torch.maximum(results[0], results[1])


def sharpness(x: torch.Tensor, top: int = 1000, decay: float = 0.01) -> torch.Tensor:
    """Sharpness of the grey image: rank-weighted RMS of its ``top`` largest local variations.

    The local variation of a pixel is the largest absolute difference to its 8 neighbours
    (3×3 window, replicate border). The ``top`` largest are sorted (rank r = 0, 1, ...) and
    combined as ``sqrt(Σ w_r v_r² / Σ w_r)`` with ``w_r = exp(−decay·r)``. 0-d tensor.
    """
    g = _grey(x)
    padded = F.pad(g, (1, 1, 1, 1), mode="replicate")
    patches = F.unfold(padded, 3)  # (1, 9, H·W)
    variation = (patches - g.reshape(1, 1, -1)).abs().amax(1).flatten()
    k = min(int(top), variation.numel())
    values = variation.topk(k).values
    weights = torch.exp(-decay * torch.arange(k, device=g.device, dtype=torch.float32))
    return torch.sqrt((weights * values**2).sum() / weights.sum())


class SharpnessRatio(StopRule):
    """Shi et al. (IJCV 2022): stop when the blurriness/sharpness ratio settles.

    ``r_t = blurriness(x_t) / sharpness(x_t)`` on the grey image, every step. The rule stops at
    the first check step ``t > 2n`` where the means of ``r`` over ``[t−2n, t−n)`` and
    ``[t−n, t)`` differ by less than ``eps``; ``best`` is the kept tensor at that check step
    (decisions are taken every ``check_every`` steps); until then ``best`` is the latest kept
    tensor. Memory: the last ``2n`` scores on the host and one image (the latest kept tensor,
    referenced; copied once, when the rule triggers).

    Scale: intensities in ``[0, 1]``; blurriness is in ``[0, 1]`` and sharpness in ``[0, 1]``,
    so on natural images ``r`` ranges from about 0.3 (sharp) to above 1 (flat), and ``eps``
    is absolute on that scale.
    """

    name = "sharpness"
    label = "blur/sharpness"

    def __init__(
        self,
        n: int = 100,
        eps: float = 0.01,
        *,
        top: int = 1000,
        keep: str = "average",
        check_every: int = 10,
    ) -> None:
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self.n = int(n)
        self.eps = float(eps)
        self.top = int(top)
        super().__init__(keep=keep, check_every=check_every)

    def reset(self) -> None:
        super().reset()
        self._recent: deque[float] = deque(maxlen=2 * self.n)

    def describe(self) -> str:
        return f"n={self.n}, eps={self.eps}, keep={self.keep!r}"

    @property
    def best(self) -> torch.Tensor | None:
        """Once triggered, the kept tensor at the stop; before, the latest (a reference)."""
        return self._best if self.triggered else self._latest

    @property
    def best_step(self) -> int | None:
        if self.triggered:
            return self._best_step  # type: ignore[return-value]
        return self._latest_step or None

    def _observe(self, step, estimate, keep):  # type: ignore[override]
        self._remember(keep, step)
        ratio = blurriness(estimate) / sharpness(estimate, self.top).clamp_min(1e-12)
        return ratio

    def _on_scores(self, new: list[tuple[int, float]]) -> None:
        self._recent.extend(value for _, value in new)

    def _decide(self, step: int) -> str | None:
        if len(self._recent) < 2 * self.n or step <= 2 * self.n or self._latest is None:
            return None
        values = list(self._recent)
        older = sum(values[: self.n]) / self.n
        newer = sum(values[self.n :]) / self.n
        change = abs(newer - older)
        if not change < self.eps:
            return None
        self._freeze_latest()
        return (
            f"blur/sharpness ratio settled at step {step}: mean changed by {change:.4f} "
            f"< {self.eps} over the last {2 * self.n} steps"
        )
