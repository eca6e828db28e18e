"""Fusion of a denoised piece with a classical denoiser's estimate, weighted by SURE.

The blend ``f = w·h + (1 − w)·g`` of the network's estimate ``h`` and a classical one ``g``
(scikit-image's NL-means, or BM3D from the optional ``bm3d`` package) has, for noise of
variance ``v`` per pixel, the risk estimate

    SURE(w) = mean((y − f)²) − mean(v) + 2·(w·D_h + (1 − w)·D_g),   D = mean(v ⊙ ∂·/∂y),

quadratic in ``w``: its minimum on [0, 1] has a closed form. ``D_h`` comes from the SURE pair
the fit already ran; ``D_g`` from one more classical call on ``y + δ`` (a Monte-Carlo
divergence, Ramani, Blu & Unser 2008). So the weight, and the blend's estimated error, use no
ground truth. Photon counts go through the generalised Anscombe transform, the classical
denoiser at unit noise, and the exact unbiased inverse (Mäkitalo & Foi 2013). Numpy in and
out; the pieces are ``(C, h, w)`` or ``(C, D, h, w)`` float32 in the engine's range.

Inpainting blends with scikit-image's biharmonic fill instead, its weight chosen where both
estimates are predictions: on the known pixels the fit held out (self-validation), filled
again by the biharmonic without them (:func:`fuse_filled`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Fusion",
    "biharmonic_fill",
    "classical_estimate",
    "fuse",
    "fuse_filled",
    "fuse_piece",
    "require",
    "stabilised",
]

# The classical estimate's divergence probe, in noise standard deviations: small enough for a
# derivative (SURE's bias grows with it for a non-linear denoiser: NL-means read ~0.3 dB
# optimistic at 0.3 σ), large enough for float32 and BM3D's thresholds.
PROBE = 0.03
# bm3d's native thread pool aborts the process when two threads call it at once: one at a
# time (pieces fitted side by side each fuse at their end).
_BM3D_LOCK = threading.Lock()


def require(method: str) -> None:
    """Raise a clear ``ImportError`` when ``method``'s package is not installed."""
    if method == "bm3d":
        try:
            import bm3d  # noqa: F401
        except ImportError:
            raise ImportError(
                "fuse='bm3d' needs the bm3d package (its licence is not BSD, so it is an "
                "optional extra): pip install 'napari-dip[bm3d]'; or use fuse='nlmeans'"
            ) from None


def _denoise_planes(method: str, planes: np.ndarray, sigma: float) -> np.ndarray:
    """``planes`` ``(C, h, w)`` float64 with white noise of std ``sigma``, denoised (three
    channels as one colour image)."""
    colour = planes.shape[0] == 3
    if method == "bm3d":
        import bm3d

        with _BM3D_LOCK:
            if colour:
                out = bm3d.bm3d_rgb(np.moveaxis(planes, 0, -1), sigma)
                return np.moveaxis(np.asarray(out, np.float64), -1, 0)
            return np.stack([np.asarray(bm3d.bm3d(p, sigma), np.float64) for p in planes])
    if method == "nlmeans":
        from skimage.restoration import denoise_nl_means

        # scikit-image's gallery settings: h = 0.8 σ, σ subtracted from patch distances
        kw = {
            "h": 0.8 * sigma,
            "sigma": sigma,
            "fast_mode": True,
            "patch_size": 5,
            "patch_distance": 6,
        }
        if colour:
            out = denoise_nl_means(np.moveaxis(planes, 0, -1), channel_axis=-1, **kw)
            return np.moveaxis(out, -1, 0)
        return np.stack([denoise_nl_means(p, **kw) for p in planes])
    raise ValueError(f"unknown classical denoiser {method!r}")


def stabilised(
    method: str, z: np.ndarray, gain: float, offset: float, read_noise: float
) -> np.ndarray:
    """Poisson–Gaussian camera data ``z`` (``(..., h, w)``, image units) denoised plane by
    plane: the generalised Anscombe transform to unit noise, each plane scaled to 0..1 (unit
    noise is 1/range there) for the Gaussian denoiser, then the exact unbiased inverse."""
    from ..anscombe import gat, inverse_unbiased

    x = np.asarray(z, np.float64)
    planes = gat(x, gain, offset, read_noise).reshape(-1, *x.shape[-2:])
    d = np.empty_like(planes)
    for i, plane in enumerate(planes):
        lo, span = float(plane.min()), max(float(np.ptp(plane)), 1e-12)
        d[i] = _denoise_planes(method, ((plane - lo) / span)[None], 1 / span)[0] * span + lo
    return inverse_unbiased(d, gain, offset, read_noise).reshape(x.shape)


def classical_estimate(
    method: str, unit: np.ndarray, noise: tuple[str, dict[str, float]], sigma: float
) -> np.ndarray:
    """The classical denoiser's estimate of ``unit`` (a volume plane by plane).

    Gaussian noise: the denoiser told ``sigma`` (normalised units). Photon counts (``noise``
    the piece's model: counts = offset + scale·unit, read noise of variance read_var): the
    photon counts through :func:`stabilised`."""
    x = np.asarray(unit, np.float64)
    if x.ndim == 4:  # (C, D, h, w): each depth's (C, h, w) as an image
        planes = [classical_estimate(method, x[:, k], noise, sigma) for k in range(x.shape[1])]
        return np.stack(planes, axis=1)
    name, terms = noise
    if name == "gaussian":
        return _denoise_planes(method, x, sigma).astype(np.float32)
    scale, offset = terms["scale"], terms.get("offset", 0.0)
    read = float(np.sqrt(terms.get("read_var", 0.0)))
    rate = stabilised(method, offset + scale * x, 1.0, 0.0, read)
    return ((rate - offset) / scale).astype(np.float32)


@dataclass(frozen=True)
class Fusion:
    """A blend's outcome: the ``estimate``, the network's ``weight`` in it, and its SURE
    (``mse``, normalised units²)."""

    estimate: np.ndarray
    weight: float
    mse: float


def fuse(
    y: np.ndarray,
    h: np.ndarray,
    g: np.ndarray,
    divergence_h: float,
    divergence_g: float,
    variance: float,
) -> Fusion:
    """The blend of ``h`` and ``g`` whose SURE is lowest (see the module's docstring).

    Examples
    --------
    Two estimates with independent errors of the same size: an even blend halves the error.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.zeros(100_000)
    >>> y = x + rng.normal(0, 1, x.shape)
    >>> h, g = x + 0.3 * rng.normal(size=x.shape), x + 0.3 * rng.normal(size=x.shape)
    >>> # (divergences 0: h and g do not follow y)
    >>> f = fuse(y, h, g, 0.0, 0.0, 1.0)
    >>> round(f.weight, 1), round(f.mse, 3)
    (0.5, 0.045)
    """
    residual, step = y - g, h - g
    spread = float(np.mean(step * step))
    w = 1.0
    if spread > 0:
        w = (float(np.mean(residual * step)) - (divergence_h - divergence_g)) / spread
        w = min(max(w, 0.0), 1.0)
    f = g + w * step
    mse = float(np.mean((y - f) ** 2)) - variance
    mse += 2 * (w * divergence_h + (1 - w) * divergence_g)
    return Fusion(f.astype(np.float32), w, mse)


def fuse_piece(
    method: str,
    y: np.ndarray,
    h: np.ndarray,
    std: np.ndarray,
    noise: tuple[str, dict[str, float]],
    divergence_h: float,
    variance: float,
    seed: int,
) -> Fusion:
    """Fuse a piece's SURE-chosen estimate ``h`` (divergence ``divergence_h``) with
    ``method``'s estimate of ``y``; ``std`` is the noise's standard deviation per pixel (its
    mean square ``variance`` is what the fit's SURE used), ``seed`` the classical probe's."""
    sigma = float(np.sqrt(np.mean(std.astype(np.float64) ** 2)))
    g = classical_estimate(method, y, noise, sigma)
    b = np.random.default_rng(seed).standard_normal(y.shape)
    delta = (PROBE * std * b).astype(np.float32)
    moved = classical_estimate(method, y + delta, noise, sigma)
    delta64 = delta.astype(np.float64)
    divergence_g = float(np.mean(delta64 * (moved - g.astype(np.float64)))) / PROBE**2
    return fuse(
        y.astype(np.float64),
        h.astype(np.float64),
        g.astype(np.float64),
        divergence_h,
        divergence_g,
        variance,
    )


def biharmonic_fill(
    unit: np.ndarray, known: np.ndarray, fallback: np.ndarray | None = None
) -> np.ndarray:
    """``unit`` (``(C, h, w)`` or ``(C, D, h, w)``) with its unknown pixels (``known`` false,
    ``(1 or C, ...)``) filled by scikit-image's biharmonic inpainting, plane by plane (a
    volume's 3-D fill took 11× as long as its planes' fills). A plane with no known pixel is
    ``fallback``'s (else left as it is)."""
    from skimage.restoration import inpaint_biharmonic

    x = np.asarray(unit, np.float64)
    known = np.broadcast_to(np.asarray(known, bool), x.shape)
    out = x.copy()
    for index in np.ndindex(x.shape[:-2]):
        if known[index].all():
            continue
        if known[index].any():
            out[index] = inpaint_biharmonic(x[index], ~known[index])
        elif fallback is not None:
            out[index] = fallback[index]
    return out


def fuse_filled(y: np.ndarray, known: np.ndarray, held: np.ndarray, h: np.ndarray) -> Fusion:
    """An inpainting's estimate ``h``, fitted without the ``held`` pixels (part of ``known``,
    both ``(1 or C, ...)``), blended with the biharmonic fill of ``y``:
    ``f = w·h + (1 − w)·g``, ``w`` in [0, 1] the least squares on the held-out pixels, where
    ``h`` and the biharmonic fill without them, ``g_held``, both predict what they did not
    see. ``g`` is the fill from every known pixel (``h`` in a plane without one: a volume's
    missing slice); ``mse`` the blend's mean squared error on the held-out pixels (noise
    included). No held-out pixel: ``h`` as it is (``w`` 1).

    Examples
    --------
    A smooth ramp with half its pixels missing: the biharmonic fill predicts it exactly, so a
    noisy ``h`` gets no weight.

    >>> import numpy as np
    >>> y = np.tile(np.linspace(0, 1, 32), (32, 1))[None]
    >>> known = (np.indices((32, 32)).sum(0) % 2 == 0)[None]
    >>> held = known & (np.arange(32)[:, None] % 4 == 0)
    >>> h = y + np.random.default_rng(0).normal(0, 0.1, y.shape)
    >>> round(fuse_filled(y, known, held, h).weight, 2)
    0.0
    """
    y64, h64 = np.asarray(y, np.float64), np.asarray(h, np.float64)
    known = np.broadcast_to(np.asarray(known, bool), y64.shape)
    held = np.broadcast_to(np.asarray(held, bool), y64.shape) & known
    if not held.any():
        return Fusion(np.asarray(h, np.float32), 1.0, float("nan"))
    g_held = biharmonic_fill(y64, known & ~held, h64)[held]
    # the held-out pixels' blend: :func:`fuse` with no divergence (neither estimate saw them)
    on_held = fuse(y64[held], h64[held], g_held, 0.0, 0.0, 0.0)
    g = biharmonic_fill(y64, known, h64)
    w = on_held.weight
    return Fusion((g + w * (h64 - g)).astype(np.float32), w, on_held.mse)
