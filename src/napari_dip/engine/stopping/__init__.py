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

from .base import KEEP, FixedBudget, StopRule
from .discrepancy import Discrepancy, expected_half_deviance, noise_level
from .groups import FirstOf, Panel
from .sharpness import SharpnessRatio, blurriness, sharpness
from .sure import Sure
from .validation import SelfValidation
from .variance import ExponentialVariance, WindowedVariance

__all__ = [
    "KEEP",
    "RULES",
    "Discrepancy",
    "ExponentialVariance",
    "FirstOf",
    "FixedBudget",
    "Panel",
    "SelfValidation",
    "SharpnessRatio",
    "StopRule",
    "Sure",
    "WindowedVariance",
    "blurriness",
    "expected_half_deviance",
    "make_stop_rule",
    "noise_level",
    "sharpness",
]

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
    "validation": SelfValidation,
    "sure": Sure,
    "budget": FixedBudget,
}
# "auto" is ES-WMV and the discrepancy principle, whichever stops first. Alone, ES-WMV waits
# 400 steps and then for its variance minimum: it misses the narrow peaks of Adam 0.8 / 0.9
# (σ = 15: 1.7–2.3 dB) and of photon-limited data (never stops). The discrepancy rule catches
# those; ES-WMV still decides where the rule is inactive (inpainting, super-resolution, TV)
# or never reaches its level. Measurements: benchmarks/discrepancy.py (replayed denoising
# runs), benchmarks/noise_models.py (photon-limited data), README "Automatic stopping".


# "auto" for the other tasks: ES-WMV never stopped inpainting or super-resolution runs before
# the ceiling (their loss keeps falling) and the discrepancy rule is for denoising only;
# self-validation stopped every run (benchmarks/stopping.py, docs/stopping.md).
AUTO_RULES = {"inpaint": "validation", "super_resolve": "validation", "deconvolve": "validation"}
# ... and how "auto" sets them up where the rule's defaults are not the best measured. The
# held-out error of inpainting is noisy and creeps down long after the PSNR has all but
# peaked: smoothed, and counting the patience from each 2 % gain, five 144² tuning crops fitted
# with the tile network stopped after 1114 steps on average instead of 1595, 0.24 dB under
# the oracle instead of 0.31 (replayed curves; docs/benchmarks/history.md). Super-resolution's
# light tiles hold out only ~65 pixels each: the same settings were as good or better on four
# of four 256² ×4 tuning crops (by 0.01–0.16 dB) and faster on three (docs/benchmarks/history.md).
_SMOOTHED = {"patience": 100, "smoothing": 0.99, "min_gain": 0.02}
AUTO_OPTIONS: dict[str, dict[str, object]] = {
    "inpaint": dict(_SMOOTHED),
    "super_resolve": dict(_SMOOTHED),
}


def make_stop_rule(
    stop: str | StopRule | None = "auto", task: str = "denoise", **options: object
) -> StopRule:
    """A rule from its name: ``"wmv"`` (ES-WMV, with a burn-in of ``DEFAULT_BURN_IN`` steps
    and a relative tolerance of ``DEFAULT_TOLERANCE`` on the minimum), ``"emv"``,
    ``"sharpness"``, ``"discrepancy"`` (:class:`Discrepancy`, denoising only), ``"auto"``
    (for ``task`` denoise: ``"wmv"`` and ``"discrepancy"``, whichever stops first,
    :class:`FirstOf`; for the others ``AUTO_RULES``' choice), ``"budget"``/``"none"``/``None``
    (no automatic stop); a :class:`StopRule` is returned as is (reset). ``options`` go to the
    rule's class (for denoising's ``"auto"``: to ES-WMV).

    Examples
    --------
    >>> make_stop_rule("none")
    FixedBudget(keep='average')
    >>> make_stop_rule("auto", task="denoise")
    FirstOf(WindowedVariance(...), Discrepancy(...))
    """
    if isinstance(stop, StopRule):
        stop.reset()
        return stop
    name = "budget" if stop is None or stop == "none" else stop
    if name == "auto" and task in AUTO_RULES:
        return make_stop_rule(AUTO_RULES[task], **{**AUTO_OPTIONS.get(task, {}), **options})
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
