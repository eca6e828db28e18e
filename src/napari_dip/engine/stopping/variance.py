"""The variance rules: ES-WMV (Wang et al., TMLR 2023) and its buffer-free variant."""

from __future__ import annotations

import torch

from .base import _MinimumTracker

__all__ = ["ExponentialVariance", "WindowedVariance"]


class WindowedVariance(_MinimumTracker):
    """ES-WMV (Wang et al., TMLR 2023): windowed moving variance of the outputs.

    ``VAR_t = 1/W Σ_{i=t−W+1..t} ‖x_i − mean(window)‖² / #pixels``, scored from step ``W`` on.
    The minimum of VAR is tracked; the rule stops when no new minimum has appeared for
    ``patience`` steps, and ``best`` is the kept tensor at the minimum. The paper's patience is
    1000; 600 is our default from ``benchmarks/early_stopping.py`` at 128×128 (`fast` preset:
    mean gap to the oracle 0.41 dB denoising, 0.01 dB inpainting, 0.00 dB ×4 SR, never worse
    than the input; with 300 one run stopped at step 470, 5.9 dB below the oracle). ``"auto"``
    adds a burn-in of ``DEFAULT_BURN_IN`` steps and a tolerance of ``DEFAULT_TOLERANCE`` (see
    :func:`make_stop_rule`).

    ``burn_in``: no minimum is taken before this step (the variance can dip early, before the
    PSNR peak; see ``benchmarks/early_stopping.py``).

    ``tolerance``: a score within this fraction of the minimum counts as the minimum, so the
    result is the *latest* step on the minimum's plateau and the patience counts from there.
    The variance often lies flat for hundreds of steps while the PSNR still rises (σ = 50,
    astronaut, 256×256: within 5 % of its minimum from step 580 to 1210, while the PSNR rose
    1.8 dB), and its exact minimum then falls anywhere on the flat part.

    Cost: a ring buffer of ``window`` images plus three more (window mean, best, scratch) on
    the fit's device: ``(window + 3) × C × H × W × 4`` bytes, e.g. 6.6 MB for a 128×128 grey
    image and 320 MB for 512×512 RGB at ``window=100``. Per step O(#pixels): the window mean
    and the sum of squared deviations are updated incrementally (sliding Welford), and
    recomputed exactly from the buffer every ``window`` steps so rounding cannot drift.
    """

    name = "wmv"
    label = "ES-WMV"

    def __init__(
        self,
        window: int = 100,
        patience: int = 600,  # measured: 300 stopped one σ=25 run at step 470 (5.9 dB short)
        *,
        keep: str = "average",
        check_every: int = 10,
        burn_in: int = 0,
        tolerance: float = 0.0,
        min_gain: float = 0.0,
    ) -> None:
        if int(window) != window or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        self.window = int(window)
        super().__init__(
            patience=patience,
            keep=keep,
            check_every=check_every,
            burn_in=burn_in,
            tolerance=tolerance,
            min_gain=min_gain,
        )

    def reset(self) -> None:
        super().reset()
        self._buffer: torch.Tensor | None = None
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None
        self._count = 0

    def describe(self) -> str:
        return (
            f"window={self.window}, patience={self.patience}, burn_in={self.burn_in}, "
            f"tolerance={self.tolerance}, keep={self.keep!r}"
        )

    def _exact(self) -> None:
        assert self._buffer is not None
        self._mean = self._buffer.mean(0)
        self._m2 = ((self._buffer - self._mean) ** 2).sum()

    def _observe(self, step, estimate, keep):  # type: ignore[override]
        x = estimate.to(torch.float32)
        if self._buffer is None:
            self._buffer = torch.empty((self.window, *x.shape), dtype=x.dtype, device=x.device)
        slot = self._count % self.window
        self._count += 1
        if self._count <= self.window:
            self._buffer[slot].copy_(x)
            if self._count < self.window:
                return None
            self._exact()
        elif self._count % self.window == 0:
            self._buffer[slot].copy_(x)
            self._exact()  # exact every W steps: no drift from the running update
        else:
            old = self._buffer[slot].clone()
            self._buffer[slot].copy_(x)
            assert self._mean is not None and self._m2 is not None
            new_mean = self._mean + (x - old) / self.window
            # sliding Welford: M2 += Σ (x − old)·(x − new_mean + old − mean)
            self._m2 = self._m2 + ((x - old) * (x - new_mean + old - self._mean)).sum()
            self._mean = new_mean
        score = self._m2.clamp_min(0) / (self.window * x.numel())  # type: ignore[union-attr]
        self._track(step, score, keep)
        return score


class ExponentialVariance(_MinimumTracker):
    """ES-EMV: the buffer-free variant of ES-WMV, exponential moving mean and variance.

    ``δ = x_t − m``; ``m ← m + α δ``; ``v ← (1 − α)(v + α·mean(δ²))``. The first ``warmup``
    steps are not scored (``v`` starts at 0). Memory: two images (mean, best) on the device.
    """

    name = "emv"
    label = "ES-EMV"

    def __init__(
        self,
        alpha: float = 0.1,
        patience: int = 300,
        *,
        warmup: int = 100,
        keep: str = "average",
        check_every: int = 10,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        self.alpha = float(alpha)
        self.warmup = int(warmup)
        super().__init__(patience=patience, keep=keep, check_every=check_every)

    def reset(self) -> None:
        super().reset()
        self._mean: torch.Tensor | None = None
        self._var: torch.Tensor | None = None
        self._count = 0

    def describe(self) -> str:
        return f"alpha={self.alpha}, patience={self.patience}, keep={self.keep!r}"

    def _observe(self, step, estimate, keep):  # type: ignore[override]
        x = estimate.to(torch.float32)
        self._count += 1
        if self._mean is None:
            self._mean = x.clone()
            self._var = torch.zeros((), device=x.device)
            return None
        delta = x - self._mean
        self._mean.add_(delta, alpha=self.alpha)
        self._var = (1 - self.alpha) * (self._var + self.alpha * (delta**2).mean())
        if self._count <= self.warmup:
            return None
        score = self._var.clone()
        self._track(step, score, keep)
        return score
