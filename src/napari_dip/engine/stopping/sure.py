"""Stein's unbiased risk estimate (SURE) of a denoising run, from a pair fitted in lock-step.

DIP's result depends on the noisy image only through the fit, so the divergence SURE needs
(how much each output pixel follows its own input pixel) cannot come from the network alone.
A pair of identically initialised networks is fitted instead to ``y + δ`` and ``y − δ``, with
a random probe ``δ = c · s ⊙ b`` (``b`` standard normal, ``s`` the noise's standard deviation
per pixel, ``c`` small): their difference is the Monte-Carlo divergence (Ramani, Blu & Unser,
IEEE TIP 2008, with a central difference), their mean the estimate. For noise of variance
``v`` per pixel (Gaussian: the level the image shows; photon counts: what the model says of
each pixel — a first-order Poisson–Gaussian SURE):

    SURE = mean((y − h)²) − mean(v) + 2 · mean(v ⊙ ∂h/∂y)

is an estimate of the mean squared error of ``h`` against the truth: a stop rule (its
minimum) and an estimated PSNR, with no ground truth.
"""

from __future__ import annotations

import math

import torch

from ..operators import Identity
from .base import _MinimumTracker
from .discrepancy import noise_level
from .spread import risk_std

__all__ = ["Sure"]


class Sure(_MinimumTracker):
    """Track SURE of the pair's mean average and stop ``patience`` steps after its minimum;
    ``best`` is the mean average there and :attr:`estimated_mse` its SURE. Needs a problem
    of two members (``y + δ`` first, ``y − δ`` second, ``δ = scale · s ⊙ b``) with the
    identity operator; inactive otherwise."""

    name = "sure"
    label = "SURE"
    wants_members = True

    def __init__(
        self,
        patience: int = 300,
        *,
        scale: float = 0.3,
        keep: str = "average",
        check_every: int = 10,
        burn_in: int = 0,
        tolerance: float = 0.0,
    ) -> None:
        if not 0 < scale < 2:
            raise ValueError(f"scale must be in (0, 2), got {scale!r}")
        self.scale = float(scale)  # the probe's size, in noise standard deviations
        super().__init__(
            patience=patience,
            keep=keep,
            check_every=check_every,
            burn_in=burn_in,
            tolerance=tolerance,
        )

    def reset(self) -> None:
        super().reset()
        self.active = False
        self._y: torch.Tensor | None = None
        self._probe: torch.Tensor | None = None  # δ / scale = s ⊙ b
        self._variance = 0.0
        self._variance_sq = 0.0  # mean(v²), for the estimate's own spread
        self._divergence: torch.Tensor | None = None  # at the best step
        self._probe_sq: torch.Tensor | None = None  # mean(d²) there, d = the pair's J s⊙b

    def describe(self) -> str:
        return (
            f"patience={self.patience}, scale={self.scale}, burn_in={self.burn_in}, "
            f"tolerance={self.tolerance}, keep={self.keep!r}"
        )

    def prepare(self, problem: object) -> None:
        y = problem.y  # type: ignore[attr-defined]
        self.active = y.shape[0] == 2 and isinstance(getattr(problem, "operator", None), Identity)
        if not self.active:
            return
        region = (slice(None), slice(None), *problem.region)  # type: ignore[attr-defined]
        pair = y[region]
        self._y = pair.mean(0)
        self._probe = (pair[0] - pair[1]) / (2 * self.scale)
        variance = problem.noise.variance(self._y)  # type: ignore[attr-defined]
        if variance is None:
            sigma = float(noise_level(self._y[None]))
            self._variance = sigma**2 if math.isfinite(sigma) else 0.0
            self._variance_sq = self._variance**2
        else:
            self._variance = float(variance.mean())
            self._variance_sq = float((variance.expand_as(self._y) ** 2).mean())

    def _observe(self, step, estimate, keep):  # type: ignore[override]
        if not self.active or self._members is None:
            return None
        assert self._y is not None and self._probe is not None
        plus, minus = self._members[0], self._members[1]
        residual = torch.mean((self._y - keep) ** 2)
        follows = (plus - minus) / (2 * self.scale)  # J s⊙b: how the result follows the probe
        divergence = torch.mean(self._probe * follows)
        score = residual - self._variance + 2 * divergence
        better = self._track(step, score, keep)
        if better is not None:
            self._divergence = self._at_best(self._divergence, divergence, better)
            self._probe_sq = self._at_best(self._probe_sq, torch.mean(follows**2), better)
        return score

    @property
    def divergence(self) -> float | None:
        """``mean(v ⊙ ∂h/∂y)`` of the estimate at the chosen step (what a fusion of it with
        another estimate needs for that blend's SURE); None before a score."""
        return None if self._divergence is None else float(self._divergence)

    @property
    def noise_variance(self) -> float:
        """The mean noise variance ``mean(v)`` SURE uses, normalised units²."""
        return self._variance

    @property
    def estimated_mse(self) -> float | None:
        """SURE at the chosen step: the result's mean squared error, normalised units²; None
        when it is under 1 % of the noise variance (SURE's own error is larger there, e.g.
        on tiny images whose noise level is poorly known)."""
        return None if self._min is None else self.trusted(float(self._min))

    def spread(self, mse: float) -> float | None:
        """How far SURE may lie from the true error when it says ``mse``: the standard
        deviation of :func:`~.spread.risk_std` over this run's pixels."""
        samples = 0 if self._y is None else self._y.numel()
        probe_sq = 0.0 if self._probe_sq is None else float(self._probe_sq)
        return risk_std(self._variance, self._variance_sq, mse, samples, probe_sq)

    @property
    def estimated_mse_std(self) -> float | None:
        """The spread (:meth:`spread`) of :attr:`estimated_mse`; None without it."""
        mse = self.estimated_mse
        return None if mse is None else self.spread(mse)

    def trusted(self, mse: float) -> float | None:
        """``mse`` (a SURE value of this run's noise) if it is large enough to trust: over
        1 % of the noise variance; else None."""
        return mse if mse > 0.01 * self._variance else None

    def _reason(self, step: int, since: int) -> str:
        return f"SURE: lowest at step {self.best_step}, {self._no_gain(step, since)}"
