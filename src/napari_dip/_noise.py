"""Photon-noise parameters for the numpy faces: checking them, estimating them from one image,
and turning them into the engine's normalised terms. Nothing here imports torch.

The camera model: ``value = offset + gain · photons + read noise``, photons ~ Poisson, read noise
~ N(0, read_noise²), ``gain`` in intensity units per photon, ``offset`` and ``read_noise`` in
intensity units. Its variance is affine in the mean: ``var = gain · mean + (read_noise² −
gain · offset)``, which is what :func:`estimate_noise` fits.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["NOISE_MODELS", "NoiseParams", "choose_noise", "estimate_noise", "noise_terms"]

NOISE_MODELS = ("gaussian", "poisson", "poisson-gaussian")
# noise="auto" takes the photon-count model when the fitted noise variance at the bright end
# of the image is at least this many times the variance at its dark end.
PHOTON_RATIO = 1.5
_BLOCK = 8  # side of the patches whose mean and noise variance the fit uses
_BINS = 16  # intensity bins (at most), each giving one robust (mean, variance) point
_PER_BIN = 8  # patches a bin needs at least
# Immerkær (1996): this 3×3 kernel cancels any plane (local mean and gradient), leaving noise
# only; its squared weights sum to 36, so residual / 6 has the noise's variance.
_HIGHPASS = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64) / 6.0
# Tolerated negative photon counts from rounding in the data (below it: an error)
_COUNT_TOLERANCE = 0.5


@dataclass(frozen=True)
class NoiseParams:
    """Camera noise parameters in the image's intensity units (see the module docstring)."""

    gain: float
    offset: float
    read_noise: float = 0.0


def _optional_number(name: str, value: object, positive: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or None, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if name == "read_noise" and value < 0:
        raise ValueError(f"read_noise must be >= 0, got {value!r}")
    return value


def _patch_statistics(
    planes: np.ndarray, known: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and high-pass residual of every 8×8 patch (fully known ones) of ``(N, H, W)``."""
    from scipy import ndimage
    from skimage.util import view_as_blocks

    means, residuals = [], []
    for i, plane in enumerate(planes):
        if known is not None:  # holes may hold NaN: keep them out of the 3×3 residuals too
            plane = np.where(known[i], plane, 0.0)
            inner = ndimage.binary_erosion(known[i], np.ones((3, 3)), border_value=1)
        resid = ndimage.convolve(plane, _HIGHPASS, mode="reflect")
        h, w = (n - n % _BLOCK for n in plane.shape)
        if h == 0 or w == 0:
            continue
        shape = (_BLOCK, _BLOCK)
        blocks = view_as_blocks(plane[:h, :w], shape).reshape(-1, _BLOCK * _BLOCK)
        rblocks = view_as_blocks(resid[:h, :w], shape).reshape(-1, _BLOCK * _BLOCK)
        if known is not None:
            kblocks = view_as_blocks(np.ascontiguousarray(inner[:h, :w]), shape)
            full = kblocks.reshape(-1, _BLOCK * _BLOCK).all(axis=1)
            blocks, rblocks = blocks[full], rblocks[full]
        means.append(blocks.mean(axis=1))
        residuals.append(rblocks)
    if not means:
        return np.empty(0), np.empty((0, _BLOCK * _BLOCK))
    return np.concatenate(means), np.concatenate(residuals)


def _fit_points(planes: np.ndarray, known: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Robust (mean, variance, weight) points: one per intensity bin of patches."""
    means, residuals = _patch_statistics(planes, known)
    bins = min(_BINS, means.size // _PER_BIN)
    if bins < 3:
        raise ValueError(
            f"too few fully known 8×8 patches ({means.size}) to estimate the noise from; "
            "give gain and offset (and read_noise for noise='poisson-gaussian')"
        )
    edges = np.quantile(means, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, means, side="right") - 1, 0, bins - 1)
    xs, vs, ws = [], [], []
    for b in range(bins):
        chosen = which == b
        if chosen.sum() < 2:
            continue
        resid = residuals[chosen].ravel()
        # The median absolute residual ignores the patches that edges and texture inflate
        # (Foi et al. 2008 keep only smooth patches for the same reason); 1.4826 makes it a
        # standard deviation for Gaussian-like noise.
        sigma = 1.4826 * np.median(np.abs(resid - np.median(resid)))
        xs.append(np.median(means[chosen]))
        vs.append(sigma**2)
        ws.append(chosen.sum())
    return np.asarray(xs), np.asarray(vs), np.asarray(ws, dtype=np.float64)


def _image_points(
    image: np.ndarray, known: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (mean, variance, weight) points of ``image``'s 2D planes (see :func:`_fit_points`);
    patches with an unknown pixel (``known`` False) are skipped."""
    values = np.asarray(image, dtype=np.float64)
    if values.ndim < 2:
        raise ValueError(f"need an image of at least 2 dimensions, got shape {values.shape}")
    planes = values.reshape(-1, *values.shape[-2:])
    mask = None if known is None else np.broadcast_to(known, values.shape).reshape(planes.shape)
    return _fit_points(planes, mask)


def estimate_noise(
    image: np.ndarray,
    known: np.ndarray | None = None,
    gain: float | None = None,
    offset: float | None = None,
    read_noise: float | None = None,
) -> NoiseParams:
    """Estimate the camera's gain, offset and read noise from a single image.

    The classic mean–variance fit (after Foi et al. 2008): the image is cut into 8×8 patches,
    each gives its mean and its noise residual (a 3×3 high-pass that cancels smooth structure);
    patches are grouped into intensity bins, each bin gives a robust noise variance (median
    absolute residual), and a weighted straight line ``var = gain · mean + b`` is fitted with
    ``b = read_noise² − gain · offset``. Given values are kept and only the rest estimated.

    A single fit cannot tell the offset from the read noise (only ``b``); when neither is
    given, the read noise is taken as 0 and the offset as ``−b / gain``, which gives the
    Poisson–Gaussian loss the same shift either way (see
    :class:`napari_dip.engine.PoissonGaussian`). Pass ``read_noise=0`` for pure Poisson noise:
    a given offset then fixes the line through ``(offset, 0)``.

    Parameters
    ----------
    image : ndarray
        ``(..., H, W)``: every 2D plane over the last two axes contributes patches.
    known : ndarray of bool, optional
        Same shape; patches with any unknown pixel are skipped.
    gain, offset, read_noise : float, optional
        Known values (intensity units; gain per photon).

    Returns
    -------
    NoiseParams
    """
    gain = _optional_number("gain", gain, positive=True)
    offset = _optional_number("offset", offset)
    read_noise = _optional_number("read_noise", read_noise)
    if gain is not None and offset is not None and read_noise is not None:
        return NoiseParams(gain, offset, read_noise)
    x, v, w = _image_points(image, known)
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError("the image has too little intensity range to estimate the noise")
    sw = np.sqrt(w)
    if gain is None:
        if offset is not None and read_noise is not None:  # a line through (offset, σ²)
            sigma2 = read_noise**2
            dx = x - offset
            gain = float(np.sum(w * dx * (v - sigma2)) / np.sum(w * dx * dx))
            b = sigma2 - gain * offset
        else:
            gain, b = (float(c) for c in np.polyfit(x, v, 1, w=sw))
        if not gain > 0:
            raise ValueError(
                "could not estimate the gain: the noise does not grow with the intensity here "
                "(not photon-limited, or too little signal); give gain=, or use "
                "noise='gaussian'"
            )
    else:
        b = float(np.sum(w * (v - gain * x)) / np.sum(w))
    if offset is None:
        sigma2 = 0.0 if read_noise is None else read_noise**2
        offset = (sigma2 - b) / gain
    if read_noise is None:
        read_noise = math.sqrt(max(b + gain * offset, 0.0))
    return NoiseParams(float(gain), float(offset), float(read_noise))


def choose_noise(
    values: np.ndarray, known: np.ndarray | None = None, given: bool = False
) -> tuple[str, str]:
    """``noise="auto"``: the model the image's own noise calls for, and why.

    The mean–variance points of :func:`estimate_noise` (bins near an integer type's limits,
    where clipping shrinks the variance, left out) are fitted with a line: noise whose
    variance grows with the intensity (by ``PHOTON_RATIO`` or more across the image's range)
    is photon noise — ``"poisson-gaussian"``; flat variance is ``"gaussian"``. Camera
    parameters given (``given``) mean photon counts.
    """
    if given:
        return "poisson-gaussian", "camera parameters given"
    try:
        x, v, w = _image_points(values, known)
    except ValueError:
        return "gaussian", "too few patches to see how the noise grows: Gaussian"
    dtype = np.asarray(values).dtype
    if np.issubdtype(dtype, np.integer):
        low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
        clear = (x - low > 2 * np.sqrt(v)) & (high - x > 2 * np.sqrt(v))
        x, v, w = x[clear], v[clear], w[clear]
    if x.size < 3 or np.ptp(x) == 0:
        return "gaussian", "too little intensity range to see how the noise grows: Gaussian"
    slope, intercept = np.polyfit(x, v, 1, w=np.sqrt(w))
    lo_x, hi_x = np.quantile(x, (0.1, 0.9))
    lo_v = max(slope * lo_x + intercept, 1e-12 * float(np.max(v)))
    ratio = (slope * hi_x + intercept) / lo_v
    if ratio >= PHOTON_RATIO:
        return "poisson-gaussian", f"noise variance grows {ratio:.1f}× with the intensity"
    return "gaussian", f"noise variance flat across the intensities ({ratio:.2f}×)"


def noise_terms(
    noise: str,
    values: np.ndarray,
    lo: float,
    hi: float,
    known: np.ndarray | None = None,
    gain: float | None = None,
    offset: float | None = None,
    read_noise: float | None = None,
    sigma: float | None = None,
) -> tuple[dict[str, float], NoiseParams | None]:
    """Check ``noise`` and its parameters and return the engine model's keyword arguments
    (``scale``, ``offset``, ``read_var`` in photons for the normalised range ``lo..hi``) plus
    the parameters used (None for Gaussian noise).

    ``values`` is the image in its own units (``(..., H, W)``), ``known`` its known pixels.
    Poisson noise with a given offset refuses data below it: photon counts can't be negative.
    """
    if not isinstance(noise, str) or noise not in NOISE_MODELS:
        raise ValueError(
            f"unknown noise model {noise!r}; choose 'gaussian', 'poisson' or 'poisson-gaussian'"
        )
    if noise == "gaussian":
        pairs = (("gain", gain), ("offset", offset), ("read_noise", read_noise))
        given = [name for name, value in pairs if value is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} only apply to noise='poisson' or 'poisson-gaussian'"
            )
        if sigma is None:
            return {}, None
        if not (hi > lo):
            raise ValueError("sigma needs an image with an intensity range (it is constant)")
        return {"sigma": float(sigma) / (hi - lo)}, None
    if sigma is not None:
        raise ValueError(f"sigma is the Gaussian noise's level: noise={noise!r} takes read_noise")
    if noise == "poisson" and read_noise is not None:
        raise ValueError("read_noise needs noise='poisson-gaussian' (plain Poisson has none)")
    offset_given = offset is not None
    params = estimate_noise(values, known, gain, offset, 0.0 if noise == "poisson" else read_noise)
    data = np.asarray(values) if known is None else np.asarray(values)[known]
    low = float(np.min(data))
    if noise == "poisson":
        counts = (low - params.offset) / params.gain
        if counts < -_COUNT_TOLERANCE:
            if offset_given:
                raise ValueError(
                    f"noise='poisson' needs intensities >= the offset ({params.offset:g}): "
                    f"the image goes down to {low:g}, which would be negative photon counts. "
                    "Give the camera's offset, or use noise='poisson-gaussian' for read noise"
                )
            # An estimated offset above the darkest pixels: read noise the model lacks. Keep
            # the counts non-negative rather than refuse.
            params = NoiseParams(params.gain, low, 0.0)
        read_var = 0.0
    else:
        read_var = (params.read_noise / params.gain) ** 2
    terms = {
        "scale": (hi - lo) / params.gain,
        "offset": (lo - params.offset) / params.gain,
        "read_var": read_var,
    }
    return terms, params
