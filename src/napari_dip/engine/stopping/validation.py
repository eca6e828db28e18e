"""Self-validation (Li et al., BMVC 2021): stop where the held-out pixels are best predicted.

A random share of the observed pixels is kept out of the fit (the problem's ``holdout``). The
error on them, which the fit never sees, falls while the network learns the image and rises
once it fits the noise of the others; its minimum is the rule's choice. It works for every
operator that observes pixels — denoising, inpainting (held-out known pixels), super-resolution
(held-out low-resolution pixels), deconvolution (held-out blurred pixels) — and, for
denoising, it estimates the result's error without ground truth: a held-out pixel's squared
error is the estimate's error there plus the noise variance, which the noise model knows
(photon counts) or the image tells (Gaussian: :func:`.discrepancy.noise_level`).
"""

from __future__ import annotations

import math

import torch

from ..operators import Identity
from .base import _MinimumTracker
from .discrepancy import noise_level
from .spread import risk_std

__all__ = ["SelfValidation"]


class SelfValidation(_MinimumTracker):
    """Track the held-out data term of the running average (``share`` of the observed
    pixels are held out) and stop ``patience`` steps after its minimum; ``best`` is the
    average at the minimum. ``smoothing`` (0: none) averages the score exponentially so
    single-step jitter does not set the minimum.

    :attr:`estimated_mse` is the chosen estimate's mean squared error in normalised units,
    estimated on the held-out pixels (denoising only; None otherwise): held-out squared error
    minus the noise variance.
    """

    name = "validation"
    label = "self-validation"

    def __init__(
        self,
        patience: int = 300,
        *,
        share: float = 0.05,
        smoothing: float = 0.0,
        keep: str = "average",
        check_every: int = 10,
        burn_in: int = 0,
        tolerance: float = 0.0,
        min_gain: float = 0.0,
    ) -> None:
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
        if not 0 < share < 0.5:
            raise ValueError(f"share must be in (0, 0.5), got {share!r}")
        self.smoothing = float(smoothing)
        self.share = float(share)  # of the observed pixels held out of the fit
        super().__init__(
            patience=patience,
            keep=keep,
            check_every=check_every,
            burn_in=burn_in,
            tolerance=tolerance,
            min_gain=min_gain,
        )

    wants_validation = True

    def reset(self) -> None:
        super().reset()
        self._smooth: torch.Tensor | None = None
        self._squared: torch.Tensor | None = None  # held-out squared error at the minimum
        self._floor: float | None = None
        self.active = False

    def describe(self) -> str:
        return (
            f"patience={self.patience}, share={self.share}, smoothing={self.smoothing}, "
            f"burn_in={self.burn_in}, "
            f"tolerance={self.tolerance}, min_gain={self.min_gain}, keep={self.keep!r}"
        )

    def prepare(self, problem: object) -> None:
        held = getattr(problem, "holdout", None)
        self.active = held is not None
        self._floor = None
        self._floor_sq, self._held = 0.0, 0  # mean(v²) over the held-out pixels, their number
        if not self.active or not isinstance(getattr(problem, "operator", None), Identity):
            return
        y = problem.y  # type: ignore[attr-defined]
        variance = problem.noise.variance(y)  # type: ignore[attr-defined]
        if variance is None:  # Gaussian: the level the image shows
            sigma = float(noise_level(y))
            self._floor = sigma**2 if math.isfinite(sigma) else None
            self._floor_sq = sigma**4 if math.isfinite(sigma) else 0.0
            self._held = int(held.expand_as(y).sum())
        else:
            mask = held.expand_as(y)
            count = mask.sum().clamp(min=1)
            self._floor = float((variance * mask).sum() / count)
            self._floor_sq = float((variance**2 * mask).sum() / count)
            self._held = int(mask.sum())

    def _observe(self, step, estimate, keep):  # type: ignore[override]
        if not self.active or self._validation is None:
            return None
        data, squared = self._validation
        if self._smooth is None or not self.smoothing:
            self._smooth = data.clone()
        else:
            self._smooth.mul_(self.smoothing).add_(data, alpha=1 - self.smoothing)
        better = self._track(step, self._smooth, keep)
        if better is not None:
            self._squared = self._at_best(self._squared, squared, better)
        return self._smooth

    @property
    def estimated_mse(self) -> float | None:
        """The chosen estimate's error (normalised units²) from the held-out pixels."""
        if self._floor is None or self._squared is None:
            return None
        return float(self._squared) - self._floor

    @property
    def estimated_mse_std(self) -> float | None:
        """How far :attr:`estimated_mse` may lie from the true error: the standard deviation
        of :func:`~.spread.risk_std` over the held-out pixels only."""
        mse = self.estimated_mse
        if mse is None or self._floor is None:
            return None
        return risk_std(self._floor, self._floor_sq, mse, self._held)

    def _reason(self, step: int, since: int) -> str:
        return (
            f"self-validation: held-out error lowest at step {self.best_step}, "
            f"{self._no_gain(step, since)}"
        )
