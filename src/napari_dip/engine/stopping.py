"""Stop rules: decide, without ground truth, when a DIP run has reached its best estimate.

A rule *watches* the estimates the fit loop produces; it never changes them. The protocol
(:class:`StopRule`):

- ``prepare(problem)`` is called once before the first step, after ``reset()``.
- ``observe(step, estimate, average, loss)`` is called after every optimisation step with the
  network output (``(C, H, W)``, on the fit's device, cropped to the region of interest) and
  the running exponential average of outputs. It works on the device and never reads a value
  back to the host, so it costs no synchronisation.
- ``check(step)`` is called every ``check_every`` steps. It reads the scores computed since the
  last read back in one transfer (the only host sync) and says whether to stop. Decisions are
  taken at these steps only, so how often the caller *displays* progress (``flush``) never
  changes where a run stops.
- ``flush()`` reads the pending scores back without deciding (for display).
- After ``check`` returned True the rule is *triggered*: it ignores later observations, so its
  ``best``/``best_step``/``reason`` stay those of the moment it would have stopped. A rule can
  therefore also be used as a pure observer of a longer run (see :class:`Panel`).

Every rule offers ``scores`` (all ``(step, score)`` pairs read back so far, for plotting),
``score`` (the latest), ``best`` (a device tensor: the estimate the rule chooses, or ``None``
before it has one), ``best_step`` and ``reason`` (why it stopped, ``None`` until then).
``keep`` chooses what ``best`` holds at the chosen step: the exponential average of outputs
(``"average"``, the default: about 1 dB better than the raw output near the peak in our runs)
or the raw network output (``"estimate"``, as in the ES-WMV paper). The rules always *score*
the raw output.

Rules
-----
- :class:`WindowedVariance` (ES-WMV, Wang et al., TMLR 2023)
- :class:`ExponentialVariance` (ES-EMV, its buffer-free variant)
- :class:`SharpnessRatio` (blurriness/sharpness plateau, Shi et al., IJCV 2022)
- :class:`Discrepancy` (Morozov's discrepancy principle, denoising only: the data term
  reaches its value at the truth, the noise variance estimated from ``y`` or the expected
  Poisson deviance; reads the loss, which ``observe`` receives, and the problem, which
  ``prepare`` receives)
- :class:`FixedBudget` (never stops by itself: the step budget decides)
- :class:`FirstOf` (several rules; the first to stop decides) and :class:`Panel` (several
  rules watching, for benchmarks)
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from .noise import Gaussian, Poisson
from .operators import Identity

__all__ = [
    "RULES",
    "Discrepancy",
    "ExponentialVariance",
    "FirstOf",
    "FixedBudget",
    "Panel",
    "SharpnessRatio",
    "StopRule",
    "WindowedVariance",
    "blurriness",
    "expected_half_deviance",
    "make_stop_rule",
    "noise_level",
    "sharpness",
]

KEEP = ("estimate", "average")


class StopRule:
    """Base class: score bookkeeping, host read-back and the triggered state.

    Subclasses implement :meth:`_observe` (device work, returns a 0-d score tensor or ``None``)
    and :meth:`_decide` (host work on the scores just read back, returns a reason to stop or
    ``None``).
    """

    name = "rule"

    def __init__(self, *, keep: str = "average", check_every: int = 10) -> None:
        if keep not in KEEP:
            raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
        if int(check_every) != check_every or check_every < 1:
            raise ValueError(f"check_every must be a positive integer, got {check_every!r}")
        self.keep = keep
        self.check_every = int(check_every)
        self.reset()

    # --- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: ready for a new run."""
        self.scores: list[tuple[int, float]] = []
        self.triggered = False
        self.reason: str | None = None
        self.stop_step: int | None = None
        self._pending_steps: list[int] = []
        self._pending: list[torch.Tensor] = []
        self._step = 0
        self._best: torch.Tensor | None = None
        self._best_step: int | torch.Tensor | None = None
        self._loss: torch.Tensor | None = None
        self._latest: torch.Tensor | None = None  # see _remember
        self._latest_step = 0

    @property
    def score(self) -> float | None:
        """The latest score read back (``None`` before the first)."""
        return self.scores[-1][1] if self.scores else None

    @property
    def best(self) -> torch.Tensor | None:
        """The chosen estimate (on the fit's device), ``None`` before the rule has one."""
        return self._best

    @property
    def best_step(self) -> int | None:
        """The step of :attr:`best` (a host sync if it is kept on the device)."""
        if isinstance(self._best_step, torch.Tensor):
            step = int(self._best_step)
            return step if step > 0 else None
        return self._best_step

    def _remember(self, keep: torch.Tensor, step: int) -> None:
        """Hold a reference to the latest kept tensor (no copy: it may change in place)."""
        self._latest, self._latest_step = keep, step

    def _freeze_latest(self) -> None:
        """The rule decided at this check: the latest kept tensor becomes its choice."""
        assert self._latest is not None
        self._best, self._best_step = self._latest.clone(), self._latest_step

    @property
    def expected_stop(self) -> int | None:
        """The step where the rule will stop if nothing changes (``None``: no idea yet).

        Progress displays use it for the time left: with an automatic stop the step budget is
        only a ceiling, far beyond where runs usually end.
        """
        return None

    # --- protocol ---------------------------------------------------------------------------

    def prepare(self, problem: object) -> None:
        """Look at the problem before the first step (the fit loop calls it after
        :meth:`reset`); most rules need nothing from it."""

    def observe(
        self,
        step: int,
        estimate: torch.Tensor,
        average: torch.Tensor,
        loss: torch.Tensor | None = None,
    ) -> None:
        """Watch the output of ``step`` (and its data term ``loss``, a 0-d device tensor);
        device work only, no host sync."""
        if self.triggered:
            return
        self._step = step
        self._loss = loss
        keep = estimate if self.keep == "estimate" else average
        score = self._observe(step, estimate.detach(), keep.detach())
        if score is not None:
            self._pending_steps.append(step)
            self._pending.append(score.detach().reshape(()))

    def flush(self) -> list[tuple[int, float]]:
        """Read the pending scores back to the host (one transfer); returns the new pairs."""
        if not self._pending:
            return []
        values = torch.stack(self._pending).to("cpu", torch.float64).tolist()
        new = list(zip(self._pending_steps, values, strict=True))
        self._pending, self._pending_steps = [], []
        self.scores.extend(new)
        self._on_scores(new)
        return new

    def check(self, step: int) -> bool:
        """Read back the new scores and decide; True once the rule wants the run to stop."""
        if self.triggered:
            return True
        self.flush()
        reason = self._decide(step)
        if reason is not None:
            self.triggered = True
            self.stop_step = step
            self.reason = reason
        return self.triggered

    # --- subclass hooks ---------------------------------------------------------------------

    def _observe(
        self, step: int, estimate: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor | None:
        raise NotImplementedError

    def _on_scores(self, new: list[tuple[int, float]]) -> None:
        """Host-side bookkeeping for newly read scores (called by :meth:`flush`)."""

    def _decide(self, step: int) -> str | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        return f"keep={self.keep!r}"


class FixedBudget(StopRule):
    """The plain behaviour: never stops by itself; ``best`` is the latest kept tensor.

    Holds a reference to the latest tensor (no copy), so callers must copy ``best`` at once.
    """

    name = "budget"

    def __init__(self, *, keep: str = "average", check_every: int = 10) -> None:
        super().__init__(keep=keep, check_every=check_every)

    def _observe(self, step, estimate, keep):  # type: ignore[override]
        self._best, self._best_step = keep, step
        return None

    def _decide(self, step: int) -> str | None:
        return None


class _MinimumTracker(StopRule):
    """Shared by the variance rules: track the score's minimum on the device (no sync) and
    stop when it has not improved for ``patience`` steps."""

    def __init__(
        self,
        *,
        patience: int,
        keep: str,
        check_every: int,
        burn_in: int = 0,
        tolerance: float = 0.0,
    ) -> None:
        if int(patience) != patience or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if int(burn_in) != burn_in or burn_in < 0:
            raise ValueError(f"burn_in must be an integer >= 0, got {burn_in!r}")
        if not 0 <= tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
        self.patience = int(patience)
        self.burn_in = int(burn_in)  # no minimum is taken before this step
        self.tolerance = float(tolerance)  # a score this close to the minimum counts as it
        super().__init__(keep=keep, check_every=check_every)

    def reset(self) -> None:
        super().reset()
        self._min: torch.Tensor | None = None

    def _track(self, step: int, score: torch.Tensor, keep: torch.Tensor) -> None:
        if step < self.burn_in:
            return
        if self._min is None:
            self._min = score.clone()
            self._best = keep.clone()
            self._best_step = torch.tensor(step, device=score.device)
            return
        better = score < self._min
        torch.minimum(self._min, score, out=self._min)
        if self.tolerance:  # the latest step on the minimum's plateau
            better |= score <= self._min * (1 + self.tolerance)
        self._best_step = torch.where(better, step, self._best_step)
        torch.where(better, keep, self._best, out=self._best)  # in place: no per-step alloc

    @property
    def expected_stop(self) -> int | None:
        """Patience steps after the current minimum: where the run ends unless a new one comes."""
        if self.triggered:
            return self.stop_step
        best = self.best_step if self._min is not None else None
        return None if best is None else best + self.patience

    def _decide(self, step: int) -> str | None:
        if self._min is None:
            return None
        best = self.best_step
        if best is not None and step - best >= self.patience:
            within = f" (within {self.tolerance:.0%})" if self.tolerance else ""
            return (
                f"{self.label}: variance minimum{within} at step {best}, "
                f"no new minimum for {step - best} steps"
            )
        return None

    label = "ES"


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


# --- blurriness / sharpness (Shi et al., IJCV 2022) --------------------------------------------


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


# Immerkær (1996): this 3×3 kernel cancels any plane (local mean and gradient), leaving noise
# only; its squared weights sum to 36, so the response / 6 has the noise's variance.
_HIGHPASS = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]) / 6.0
_BINS = 16  # intensity bins of noise_level, each with its own robust variance


def noise_level(y: torch.Tensor) -> torch.Tensor:
    """The root mean noise variance of ``y`` (``(..., H, W)``), from ``y`` alone.

    Each pixel's 3×3 high-pass response (Immerkær 1996: cancels the local mean and gradient,
    keeps the noise's variance) is binned by its 3×3 local mean into 16 equal-count intensity
    bins; each bin's variance is its robust MAD estimate (edges make few large responses, which
    the median ignores); the result is the square root of their mean. So white noise gives its
    standard deviation, and signal-dependent noise (photon counts: variance ∝ intensity) its
    root *mean* variance, which is what a squared error to ``y`` converges to at the truth.
    Measured (``benchmarks/noise_level.py``): from −0.3 % to +14 % of σ for white Gaussian
    noise (six images at 128², σ = 15, 25, 50; high on the textured *coins* at σ = 15) and
    from −0.4 % to +4 % of the root mean variance on photon-limited slices (5–100 photons),
    where one MAD over the whole image read up to 29 % low. 0-d tensor; NaN when ``y`` is
    smaller than 3×3.
    """
    u = y.detach().to(torch.float32).reshape(-1, 1, *y.shape[-2:])
    if u.shape[-1] < 3 or u.shape[-2] < 3:
        return torch.tensor(float("nan"), device=y.device)
    response = F.conv2d(u, _HIGHPASS.to(u.device).view(1, 1, 3, 3)).flatten()
    local_mean = F.avg_pool2d(u, 3, stride=1).flatten()
    binned = response[local_mean.argsort()]
    total = torch.zeros((), device=u.device)
    for part in binned.tensor_split(max(1, min(_BINS, binned.numel() // 64))):
        mad = (part - part.median()).abs().median()
        total = total + (1.4826 * mad) ** 2 * part.numel()
    return torch.sqrt(total / binned.numel())


@functools.cache
def _deviance_table(device: torch.device) -> tuple[torch.Tensor, float, float]:
    """``f(λ) = E[λ − k + k log(k/λ)]`` for ``k ~ Poisson(λ)`` on a log grid of λ (10⁻⁴ …
    10³, 40 points per decade; summed in float64, kept in float32 on ``device``, once per
    device), with the grid's origin and step in log λ: the expected data term of the Poisson
    models at the truth. It tends to ½ + 1/(12λ) for large λ and to 0 as λ → 0."""
    lo, hi, per_decade = -4.0, 3.0, 40
    lam = torch.logspace(lo, hi, int((hi - lo) * per_decade) + 1, dtype=torch.float64)[:, None]
    k = torch.arange(0, 1500, dtype=torch.float64)[None, :]  # covers λ + 12√λ at λ = 10³
    pmf = torch.exp(torch.xlogy(k, lam) - lam - torch.lgamma(k + 1))
    table = (pmf * torch.xlogy(k, k)).sum(1) - torch.xlogy(lam[:, 0], lam[:, 0])
    step = (hi - lo) / (table.numel() - 1) * math.log(10)
    return table.to(device, torch.float32), lo * math.log(10), step


def expected_half_deviance(rate: torch.Tensor) -> torch.Tensor:
    """``E[λ − k + k log(k/λ)]`` for ``k ~ Poisson(λ)``, element-wise for the expected counts
    ``rate`` (interpolated in log λ from a table; clamped to 10⁻⁴ … 10³, where it is
    0.0009 and 0.50008): the mean of :class:`~.noise.Poisson`'s loss at the true rate."""
    table, origin, step = _deviance_table(rate.device)
    position = (rate.clamp(1e-4, 1e3).log() - origin) / step
    index = position.floor().long().clamp(0, table.numel() - 2)
    weight = (position - index).clamp(0, 1)
    return torch.lerp(table[index], table[index + 1], weight)


class Discrepancy(StopRule):
    """Morozov's discrepancy principle, for denoising: stop when the data term, averaged over
    the last ``window`` steps, has fallen to the value it takes at the truth (times
    ``factor``).

    Before the PSNR peak the network still misses part of the image and the data term is above
    that value; past it the network fits the noise and the data term falls below. The value at
    the truth comes from the noise model (the rule reads the problem in :meth:`prepare`):

    - :class:`~.noise.Gaussian` (the squared error): the mean noise variance, estimated from
      ``y`` by :func:`noise_level` (intensity-binned, so photon noise too);
    - :class:`~.noise.Poisson` and :class:`~.noise.PoissonGaussian` (the deviance): the
      expected deviance at the rates of the kept (by default the smoothed) estimate
      (:func:`expected_half_deviance`): 0.50–0.57 per pixel from half a photon up, less below.

    The score is the ratio of the averaged data term to that value. It *reaches* the level at
    the first check step from ``min_step`` on where the ratio is at most ``factor``, and stops
    ``lag`` later (a fraction of the steps so far: at the first check step from ``(1 + lag) ×``
    that step on), because the smoothed estimate that is returned lags the raw output whose
    data term is watched. 0.1 cut the mean gap to the oracle from 0.24 to 0.14 dB over 42
    replayed Gaussian runs (``benchmarks/discrepancy.py``) and from 0.24 to 0.10 dB over six
    real ones (``early_stopping.py``), and raised the mean PSNR of 12 photon-limited runs from
    27.71 to 27.77 dB (``noise_models.py``); 0.2 did better on the Gaussian runs (0.10 and
    0.03 dB) but not on the photon data (27.75 dB, with worse worst cases).
    The loss is averaged because the perturbed input makes it jitter, over a window rather
    than exponentially so that the huge losses of the first steps are forgotten after
    ``window`` steps (an average over ~50 steps still carried them at step 40, where
    photon-limited runs can already peak).
    ``best`` is the kept tensor at the step it stops.

    Only for denoising (identity operator) without a TV term: on any other problem the rule is
    inactive and never stops by itself (see :class:`FirstOf`).
    """

    name = "discrepancy"
    label = "discrepancy"

    def __init__(
        self,
        factor: float = 1.0,
        *,
        window: int = 20,
        lag: float = 0.1,
        min_step: int = 50,
        keep: str = "average",
        check_every: int = 10,
    ) -> None:
        if not factor > 0:
            raise ValueError(f"factor must be positive, got {factor!r}")
        if int(window) != window or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        if not lag >= 0:
            raise ValueError(f"lag must be >= 0, got {lag!r}")
        self.factor = float(factor)
        self.window = int(window)
        self.lag = float(lag)
        self.min_step = int(min_step)
        self.sigma: float | None = None  # σ̂ of a Gaussian model, set by prepare()
        self.noise: Poisson | None = None  # a photon-count model, set by prepare()
        super().__init__(keep=keep, check_every=check_every)

    def reset(self) -> None:
        super().reset()
        self._recent_losses: torch.Tensor | None = None  # the last `window` losses (a ring)
        self._seen = 0
        self.reached: int | None = None  # the check step where the level was reached
        self._expected: torch.Tensor | None = None  # the data term's value at the truth

    def describe(self) -> str:
        return (
            f"factor={self.factor}, window={self.window}, lag={self.lag}, "
            f"min_step={self.min_step}, keep={self.keep!r}"
        )

    def prepare(self, problem: object) -> None:
        self.sigma, self.noise = None, None
        noise = getattr(problem, "noise", None)
        if not isinstance(getattr(problem, "operator", None), Identity) or getattr(
            problem, "tv_weight", 0
        ):
            return
        if isinstance(noise, Gaussian):
            sigma = float(noise_level(problem.y))  # type: ignore[attr-defined]
            if math.isfinite(sigma) and sigma > 0:
                self.sigma = sigma
        elif isinstance(noise, Poisson):
            self.noise = noise

    @property
    def level(self) -> float | None:
        """The smoothed squared error at which the rule stops for a Gaussian model,
        ``factor · σ̂²`` (None for the other models and when inactive)."""
        return None if self.sigma is None else self.factor * self.sigma**2

    @property
    def active(self) -> bool:
        return self.sigma is not None or self.noise is not None

    @property
    def best(self) -> torch.Tensor | None:
        return self._best if self.triggered else None

    def _observe(self, step, estimate, keep):  # type: ignore[override]
        if not self.active or self._loss is None:
            return None
        self._remember(keep, step)
        if self.noise is not None:
            if self._expected is None or step % self.check_every == 0:
                self._expected = expected_half_deviance(self.noise.rate(keep)).mean()
        elif self._expected is None:
            self._expected = torch.tensor(self.sigma**2, device=self._loss.device)
        if self._recent_losses is None:
            self._recent_losses = self._loss.new_zeros(self.window)
        self._recent_losses[self._seen % self.window] = self._loss
        self._seen += 1
        return self._recent_losses[: min(self._seen, self.window)].mean() / self._expected

    @property
    def expected_stop(self) -> int | None:
        return None if self.reached is None else self._stop_after(self.reached)

    def _stop_after(self, reached: int) -> int:
        """The first check step at or after ``(1 + lag) ×`` the step the level was reached."""
        target = math.ceil((1 + self.lag) * reached)
        return -(-target // self.check_every) * self.check_every

    def _decide(self, step: int) -> str | None:
        if not self.active or self._latest is None or step < self.min_step:
            return None
        ratio = self.score
        if self.reached is None:
            if ratio is None or ratio > self.factor:
                return None
            self.reached = step
        if step < self._stop_after(self.reached):
            return None
        self._freeze_latest()
        truth = (
            f"the noise variance estimated from the input ({self.sigma:.3g}²)"
            if self.sigma is not None
            else "its expected value under the Poisson model"
        )
        return (
            f"discrepancy: the data term, averaged, reached {self.factor:g} × {truth} at step "
            f"{self.reached}; stopped at step {step} (+{self.lag:.0%}; now {ratio:.3g} ×)"
        )


class _Group(StopRule):
    """Rules watching one run together: each member sees every step and keeps its own state."""

    def __init__(self, rules: Iterable[StopRule], *, keep: str, check_every: int) -> None:
        self.rules = list(rules)
        if not self.rules:
            raise ValueError(f"{type(self).__name__} needs at least one rule")
        super().__init__(keep=keep, check_every=check_every)

    def reset(self) -> None:
        super().reset()
        for rule in getattr(self, "rules", []):  # reset() runs once before self.rules exists
            rule.reset()

    def prepare(self, problem: object) -> None:
        for rule in self.rules:
            rule.prepare(problem)

    def observe(
        self,
        step: int,
        estimate: torch.Tensor,
        average: torch.Tensor,
        loss: torch.Tensor | None = None,
    ) -> None:
        if self.triggered:
            return
        for rule in self.rules:
            rule.observe(step, estimate, average, loss)


class FirstOf(_Group):
    """Several rules on one run: stop as soon as one of them stops, with its choice.

    Until then ``best`` is the first member's, and the scores shown are the first member's.
    """

    name = "first"

    def __init__(self, rules: Iterable[StopRule], *, check_every: int = 10) -> None:
        rules = list(rules)
        super().__init__(rules, keep=rules[0].keep if rules else "average", check_every=check_every)

    def reset(self) -> None:
        super().reset()
        self.decider: StopRule | None = None  # the member that stopped the run

    def describe(self) -> str:
        return ", ".join(repr(rule) for rule in self.rules)

    def flush(self) -> list[tuple[int, float]]:
        new = self.rules[0].flush()  # the scores shown are the first member's
        for rule in self.rules[1:]:
            rule.flush()
        self.scores.extend(new)
        return new

    def check(self, step: int) -> bool:
        if self.triggered:
            return True
        self.flush()
        for rule in self.rules:
            if step % rule.check_every == 0 and rule.check(step):
                self.decider, self.reason = rule, rule.reason
                self.triggered, self.stop_step = True, step
                break
        return self.triggered

    @property
    def _lead(self) -> StopRule:
        return self.decider or self.rules[0]

    @property
    def best(self) -> torch.Tensor | None:
        return self._lead.best

    @property
    def best_step(self) -> int | None:
        return self._lead.best_step

    @property
    def expected_stop(self) -> int | None:
        if self.triggered:
            return self.stop_step
        steps = [s for s in (rule.expected_stop for rule in self.rules) if s is not None]
        return min(steps) if steps else None


class Panel(_Group):
    """Several rules watching the same run; never stops by itself (for benchmarks).

    Each member keeps its own state: once a member is triggered it freezes with the step,
    estimate and reason it would have stopped at, while the run goes on for the others.
    """

    name = "panel"

    def __init__(self, rules: Iterable[StopRule], *, check_every: int = 10) -> None:
        super().__init__(rules, keep="estimate", check_every=check_every)

    def flush(self) -> list[tuple[int, float]]:
        for rule in self.rules:
            rule.flush()
        return []

    def check(self, step: int) -> bool:
        for rule in self.rules:
            if step % rule.check_every == 0:
                rule.check(step)
        return False


# The variance can reach a minimum long before the PSNR peaks (σ = 50: step 179 vs 580 on
# astronaut, 221 vs 390 on coins, 128×128); not taking minima before step 400 never cost more
# than 0.01 dB in 12 early-stopping benchmark runs (6 of them on images not used to choose it)
# and gained 0.2–2 dB in 3 of them.
DEFAULT_BURN_IN = 400
# The variance can also lie flat for hundreds of steps while the PSNR still rises, and its
# exact minimum then falls anywhere on the flat part (σ = 50, astronaut, 256×256: minimum at
# step 723, 1.3 dB short of the PSNR peak at 1460). Taking the latest step within 2 % of the
# minimum lowered the mean denoising gap from 0.62 to 0.43 dB (coins, chelsea, 128×128) and
# from 0.31 to 0.13 dB (camera, astronaut, 256×256), left it at 0.19 dB on camera and
# astronaut at 128×128, and ends runs 60–200 steps later on average; 5 % helped more at 256×256
# but cost 1.2 dB on one run whose variance drifted up within 5 % while the PSNR fell
# (benchmarks/early_stopping.py --replay; benchmarks/results/early_stopping_tolerance.md).
DEFAULT_TOLERANCE = 0.02

RULES = {
    "wmv": WindowedVariance,
    "emv": ExponentialVariance,
    "sharpness": SharpnessRatio,
    "discrepancy": Discrepancy,
    "budget": FixedBudget,
}
# "auto" is ES-WMV and the discrepancy principle, whichever stops first. Alone, ES-WMV waits
# 400 steps and then for its variance minimum: it misses the narrow peaks of Adam 0.8 / 0.9
# (σ = 15: 1.7–2.3 dB) and of photon-limited data (never stops). The discrepancy rule catches
# those; ES-WMV still decides where the rule is inactive (inpainting, super-resolution, TV)
# or never reaches its level. Measurements: benchmarks/discrepancy.py (replayed denoising
# runs), benchmarks/noise_models.py (photon-limited data), README "Automatic stopping".


def make_stop_rule(stop: str | StopRule | None = "auto", **options: object) -> StopRule:
    """A rule from its name: ``"wmv"`` (ES-WMV, with a burn-in of ``DEFAULT_BURN_IN`` steps
    and a relative tolerance of ``DEFAULT_TOLERANCE`` on the minimum), ``"emv"``,
    ``"sharpness"``, ``"discrepancy"`` (:class:`Discrepancy`, denoising only), ``"auto"``
    (``"wmv"`` and ``"discrepancy"``, whichever stops first: :class:`FirstOf`),
    ``"budget"``/``"none"``/``None`` (no automatic stop); a :class:`StopRule` is returned as
    is (reset). ``options`` go to the rule's class (for ``"auto"``: to ES-WMV)."""
    if isinstance(stop, StopRule):
        stop.reset()
        return stop
    name = "budget" if stop is None or stop == "none" else stop
    if name == "auto":
        return FirstOf([make_stop_rule("wmv", **options), Discrepancy()])
    if name == "wmv":
        options.setdefault("burn_in", DEFAULT_BURN_IN)
        options.setdefault("tolerance", DEFAULT_TOLERANCE)
    try:
        cls = RULES[name]  # type: ignore[index]
    except (KeyError, TypeError):
        choices = ", ".join(["auto", *RULES, "none"])
        raise ValueError(f"unknown stop rule {stop!r}; choose one of {choices}") from None
    return cls(**options)  # type: ignore[arg-type]
