"""The one table of option names, defaults and help texts, shared by the API, CLI and widget.

Nothing here imports torch: the CLI builds its parser and the widget its form from this table
before any fit starts. :class:`Options` is the checked, frozen set of run options a request
carries; :data:`OPTIONS` describes each of them once (help text, choices, where it shows).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = [
    "FUSIONS",
    "MODES",
    "NOISES",
    "OPTIONS",
    "PRECISIONS",
    "STOPS",
    "TASKS",
    "Choice",
    "Option",
    "Options",
    "check_choice",
    "choice_names",
    "make_options",
]


@dataclass(frozen=True)
class Choice:
    """One allowed value of an option: its name, a short label for menus and a help line."""

    name: str
    label: str
    help: str


TASKS = (
    Choice("denoise", "Denoise", "remove noise from an image"),
    Choice("inpaint", "Inpaint", "fill the pixels a mask marks as missing"),
    Choice("super_resolve", "Super-resolve", "upscale an image by an integer factor"),
    Choice("deconvolve", "Deconvolve", "undo the blur of a known point-spread function"),
)
STOPS = (
    Choice(
        "auto",
        "auto",
        "the task's rule: ES-WMV and the discrepancy rule for denoising, self-validation for "
        "the other tasks",
    ),
    Choice("wmv", "windowed variance (ES-WMV)", "windowed moving variance of the outputs"),
    Choice("emv", "exponential variance (ES-EMV)", "its exponential, buffer-free variant"),
    Choice("sharpness", "blur/sharpness ratio", "the blurriness/sharpness ratio settles"),
    Choice(
        "discrepancy",
        "discrepancy (noise level)",
        "denoising only: the error to the input falls to what the noise alone leaves",
    ),
    Choice(
        "sure",
        "SURE (risk estimate)",
        "denoising only: a pair of fits gives Stein's unbiased risk estimate; stop at its "
        "minimum (about twice the work, and an estimated PSNR)",
    ),
    Choice(
        "validation",
        "self-validation (held-out pixels)",
        "a few observed pixels are held out of the fit; stop where they are best predicted",
    ),
    Choice("none", "none: run all steps", "no automatic stop: run every step"),
)
NOISES = (
    Choice(
        "auto",
        "auto (from the image)",
        "Gaussian or Poisson–Gaussian, whichever the image's own noise shows (a mean–variance "
        "fit), with the camera's gain and offset estimated",
    ),
    Choice("gaussian", "Gaussian (squared error)", "additive noise: the squared error"),
    Choice("poisson", "Poisson (photon counts)", "photon counts: the Poisson likelihood"),
    Choice(
        "poisson-gaussian",
        "Poisson–Gaussian (counts + read noise)",
        "photon counts plus camera read noise",
    ),
)
PRECISIONS = (
    Choice(
        "auto",
        "auto",
        "bfloat16 where the hardware computes it natively (not for volumes on a CPU), else float32",
    ),
    Choice("float32", "float32", "exact, the reference"),
    Choice("bfloat16", "bfloat16", "faster where native; emulated (slow) on other CPUs"),
    Choice("float16", "float16 (CUDA only)", "CUDA GPUs only"),
)
FUSIONS = (
    Choice(
        "auto",
        "auto",
        "inpainting with the self-validation stop and no uncertainty map: biharmonic; "
        "otherwise none",
    ),
    Choice("none", "none", "the network's estimate alone"),
    Choice(
        "nlmeans",
        "NL-means (scikit-image)",
        "blend in scikit-image's non-local means, weighted by SURE",
    ),
    Choice(
        "bm3d",
        "BM3D (optional bm3d package)",
        "blend in BM3D (after the generalised Anscombe transform for photon counts), weighted "
        "by SURE; needs the bm3d package, whose licence is not BSD: pip install "
        "'napari-dip[bm3d]'",
    ),
    Choice(
        "biharmonic",
        "biharmonic fill (scikit-image)",
        "inpainting: blend in scikit-image's biharmonic fill, weighted where both predict the "
        "known pixels the self-validation stop held out",
    ),
)
MODES = (
    Choice("slices", "every slice/frame as 2D", "every YX plane on its own, as a 2D image"),
    Choice("volume", "as a 3D volume", "every ZYX volume with a 3D network"),
)


def choice_names(choices: tuple[Choice, ...]) -> tuple[str, ...]:
    """The names of ``choices``, in order: what a parser or a check accepts.

    Examples
    --------
    >>> choice_names(MODES)
    ('slices', 'volume')
    """
    return tuple(c.name for c in choices)


def check_choice(what: str, value: object, choices: tuple[Choice, ...]) -> str:
    """``value`` if it names one of ``choices``, else a ``ValueError`` listing them.

    Examples
    --------
    >>> check_choice("mode", "volume", MODES)
    'volume'
    >>> check_choice("mode", "3d", MODES)
    Traceback (most recent call last):
    ...
    ValueError: unknown mode '3d'; choose one of 'slices', 'volume'
    """
    names = choice_names(choices)
    if not isinstance(value, str) or value not in names:
        listed = ", ".join(repr(n) for n in names)
        raise ValueError(f"unknown {what} {value!r}; choose one of {listed}")
    return value


@dataclass(frozen=True)
class Option:
    """How one run option is presented: its help text (CLI ``--help``, widget tooltip and API
    docs), its choices, and whether the widget folds it under *Advanced*."""

    name: str
    help: str
    choices: tuple[Choice, ...] = ()
    advanced: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option(
            "preset",
            "network and schedule: 'fast' (default, light enough for a CPU), 'paper' (the "
            "published configuration, slow on a CPU), or another that 'napari-dip presets' lists",
            advanced=False,
        ),
        Option(
            "steps",
            "most optimisation steps (default: from the preset; three times that with an "
            "automatic stop, which usually ends the run much earlier)",
        ),
        Option(
            "stop",
            "when to stop without ground truth; the result is the estimate the rule chose",
            STOPS,
        ),
        Option("seed", "same seed and device give the same result"),
        Option("device", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"),
        Option("precision", "arithmetic of the network's forward pass", PRECISIONS),
        Option("update_every", "steps between progress updates (results don't depend on it)"),
        Option("lr", "Adam learning rate (default: from the preset)"),
        Option("perturb_std", "std of the noise added to the network input at every step"),
        Option("tv_weight", "weight of a total-variation term (0 = plain Deep Image Prior)"),
        Option(
            "noise",
            "the data term: auto (default) picks gaussian or poisson-gaussian from the image; "
            "gaussian for most images, poisson for photon counts, poisson-gaussian for photon "
            "counts plus camera read noise",
            NOISES,
            advanced=False,
        ),
        Option(
            "sigma",
            "Gaussian noise: its standard deviation in intensity units, when known (camera "
            "calibration, a synthetic test); default: estimated from the image. The stop "
            "rules and the estimated PSNR use it, and are exact only with the true level",
        ),
        Option("gain", "camera gain, intensity units per photon (default: estimated)"),
        Option("offset", "camera offset (dark level), intensity units (default: estimated)"),
        Option("read_noise", "read-noise standard deviation, intensity units (default: estimated)"),
        Option(
            "normalize",
            "map these two percentiles (e.g. 0.1, 99.9) to the network's range instead of the "
            "min and max, so a few hot pixels don't squeeze the rest",
        ),
        Option(
            "tile",
            "restore a big image in overlapping tiles of this side (pixels), one fit each, "
            "blended without seams; auto: chosen from the image, preset, task and device; "
            "none: never tile",
        ),
        Option("tile_overlap", "overlap of neighbouring tiles in pixels (default: 1/8 of a tile)"),
        Option(
            "ensemble",
            "fit each piece this many times (flipped and rotated copies of the input, then "
            "fresh seeds) and average them: better results, and their spread as uncertainty",
        ),
        Option(
            "uncertainty",
            "also return a per-pixel standard deviation of the result (an ensemble's spread, "
            "scaled per task so ±2σ covers about 95 percent of the error on test images; 4 members "
            "unless ensemble says otherwise)",
        ),
        Option(
            "warm_start",
            "start each slice, frame or volume of a stack from the network fitted to the one "
            "before it (the same tile and ensemble member): far fewer steps for similar "
            "neighbours; off: every one from scratch (always so on a Dask cluster, where they "
            "run at once)",
        ),
        Option(
            "fuse",
            "blend the result with a classical method's, f = w·DIP + (1 − w)·classical, the "
            "weight w in [0, 1] chosen without ground truth: denoising with stop='sure' where "
            "SURE is lowest (NL-means, BM3D); inpainting where both best predict the known "
            "pixels self-validation held out (biharmonic); 'none' keeps the network's estimate; "
            "'auto' (default): biharmonic for inpainting with the self-validation stop and no "
            "uncertainty map (its scale was calibrated on unfused fits), none otherwise",
            FUSIONS,
        ),
        Option(
            "workers",
            "pieces (tiles, slices, files) fitted at once in this process, each on its share of "
            "the torch threads; auto: one per thread for tiles, else one",
        ),
    )
}


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _optional_number(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or None, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Options:
    """The run options of a request, checked (:func:`make_options`) and frozen.

    ``preset`` and ``stop`` may also be engine objects (a ``Preset``, a ``StopRule``); they are
    resolved where torch is at hand. See :data:`OPTIONS` for what each one means.
    """

    preset: Any = "fast"
    steps: int | None = None
    stop: Any = "auto"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    update_every: int = 100
    lr: float | None = None
    perturb_std: float | None = None
    tv_weight: float = 0.0
    noise: str = "auto"
    sigma: float | None = None
    gain: float | None = None
    offset: float | None = None
    read_noise: float | None = None
    normalize: tuple[float, float] | None = None
    tile: int | str | None = "auto"
    tile_overlap: int | None = None
    workers: int | str = "auto"
    ensemble: int = 1
    uncertainty: bool = False
    warm_start: bool = True
    fuse: str = "auto"

    def replace(self, **changes: Any) -> Options:
        return make_options(**{**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


OPTION_NAMES = tuple(f.name for f in fields(Options))
UNCERTAINTY_MEMBERS = 4  # ensemble members when uncertainty is asked for and no ensemble given


def make_options(**values: Any) -> Options:
    """Check run options (cheap: nothing is read or fitted) and freeze them.

    Unknown names raise ``TypeError``; bad values ``ValueError``/``TypeError`` naming the
    option. ``stop=None`` means ``"none"``; ``stop="budget"`` is accepted as its synonym.

    Examples
    --------
    >>> options = make_options(steps=200, stop=None)
    >>> options.steps, options.stop, options.preset
    (200, 'none', 'fast')
    >>> make_options(uncertainty=True).ensemble  # an uncertainty needs an ensemble
    4
    >>> make_options(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: steps must be a positive integer, got 0
    """
    unknown = sorted(set(values) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    o = replace(Options(), **values)
    stop = "none" if o.stop is None or o.stop == "budget" else o.stop
    if isinstance(stop, str):
        check_choice("stop rule", stop, STOPS)
    check_choice("precision", o.precision, PRECISIONS)
    if not isinstance(o.noise, str) or o.noise not in choice_names(NOISES):
        raise ValueError(
            f"unknown noise model {o.noise!r}; choose 'auto', 'gaussian', 'poisson' or "
            "'poisson-gaussian'"
        )
    steps = None if o.steps is None else _positive_int("steps", o.steps)
    update_every = _positive_int("update_every", o.update_every)
    if isinstance(o.seed, bool) or not isinstance(o.seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {o.seed!r}")
    if not -(2**63) <= o.seed < 2**63:  # torch's generators take 64 bits
        raise ValueError(f"seed must be an integer from -2**63 to 2**63 - 1, got {o.seed!r}")
    if not (isinstance(o.tv_weight, numbers.Real) and not isinstance(o.tv_weight, bool)):
        raise ValueError(f"tv_weight must be a number >= 0, got {o.tv_weight!r}")
    if not (o.tv_weight >= 0 and math.isfinite(o.tv_weight)):
        raise ValueError(f"tv_weight must be a finite number >= 0, got {o.tv_weight!r}")
    lr = _optional_number("lr", o.lr)
    if lr is not None and not lr > 0:
        raise ValueError(f"lr must be positive, got {o.lr!r}")
    perturb = _optional_number("perturb_std", o.perturb_std)
    if perturb is not None and not perturb >= 0:
        raise ValueError(f"perturb_std must be >= 0, got {o.perturb_std!r}")
    if not (isinstance(o.preset, str) or hasattr(o.preset, "network")):
        raise TypeError(f"preset must be a preset's name or a Preset, got {o.preset!r}")
    tile_is_size = isinstance(o.tile, numbers.Integral) and not isinstance(o.tile, bool)
    if not (o.tile is None or o.tile == "auto" or (tile_is_size and o.tile >= 16)):
        raise ValueError(f"tile must be 'auto', None or an integer >= 16 (pixels), got {o.tile!r}")
    overlap = o.tile_overlap
    if overlap is not None and (
        isinstance(overlap, bool) or not isinstance(overlap, numbers.Integral) or overlap < 0
    ):
        raise ValueError(f"tile_overlap must be None or an integer >= 0, got {overlap!r}")
    if not (isinstance(o.workers, str) and o.workers == "auto"):
        _positive_int("workers", o.workers)
    ensemble = _positive_int("ensemble", o.ensemble)
    if not isinstance(o.uncertainty, bool):
        raise TypeError(f"uncertainty must be True or False, got {o.uncertainty!r}")
    if not isinstance(o.warm_start, bool):
        raise TypeError(f"warm_start must be True or False, got {o.warm_start!r}")
    check_choice("fusion", o.fuse, FUSIONS)
    if o.fuse == "biharmonic":
        if not (stop in ("auto", "validation") or getattr(stop, "wants_validation", False)):
            raise ValueError(
                "fuse='biharmonic' weighs the two fills on the known pixels self-validation "
                f"holds out: it needs stop='validation' or 'auto' (got stop={stop!r})"
            )
    elif o.fuse not in ("auto", "none") and not (
        stop == "sure" or getattr(stop, "wants_members", False)
    ):
        raise ValueError(
            f"fuse={o.fuse!r} weighs the two estimates by SURE: it needs stop='sure' "
            f"(got stop={stop!r})"
        )
    if o.uncertainty and ensemble == 1:
        ensemble = UNCERTAINTY_MEMBERS
    if not isinstance(o.device, str):
        raise ValueError(
            f"unknown device {o.device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        )
    # checked here as well as where they are used, so a request fails when it is made
    from ._arrays import _check_normalize
    from ._noise import _optional_number as _camera_number

    normalize = _check_normalize(o.normalize)
    sigma = _camera_number("sigma", o.sigma, positive=True)
    if sigma is not None and o.noise not in ("auto", "gaussian"):
        raise ValueError(
            f"sigma is the Gaussian noise's level: it needs noise='gaussian' "
            f"or 'auto' (got noise={o.noise!r}; give read_noise instead)"
        )
    _camera_number("gain", o.gain, positive=True)
    _camera_number("offset", o.offset)
    _camera_number("read_noise", o.read_noise)
    camera = (("gain", o.gain), ("offset", o.offset), ("read_noise", o.read_noise))
    given = [name for name, value in camera if value is not None]
    if sigma is not None and given:
        raise ValueError(
            f"sigma (Gaussian noise) and {', '.join(given)} (photon counts) "
            "describe different noise models: give one or the other"
        )
    if o.noise == "gaussian" and given:
        raise ValueError(f"{', '.join(given)} only apply to noise='poisson' or 'poisson-gaussian'")
    if o.noise == "poisson" and o.read_noise is not None:
        raise ValueError("read_noise needs noise='poisson-gaussian' (plain Poisson has none)")
    return replace(
        o,
        stop=stop,
        steps=steps,
        update_every=update_every,
        seed=int(o.seed),
        tv_weight=float(o.tv_weight),
        lr=lr,
        perturb_std=perturb,
        ensemble=ensemble,
        normalize=normalize,
        sigma=sigma,
    )
