"""Seeded, offline sample data made from scikit-image's bundled images.

Each function returns the degraded image together with the clean one, so demos, tests and
benchmarks can report PSNR against the truth. ``camera`` (the default), ``astronaut`` and
the other images bundled with scikit-image need no download; :func:`photon_limited` and
:func:`blurred_cells` are synthetic.
"""

from __future__ import annotations

import numpy as np
from skimage import data

__all__ = [
    "blur_and_count",
    "blurred_cells",
    "damaged",
    "degrade_resolution",
    "grey_crop",
    "low_resolution",
    "noisy",
    "photon_limited",
]


def _crop(image: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return image
    h, w = image.shape[:2]
    if size > min(h, w):
        raise ValueError(f"size {size} is larger than the image ({h}×{w})")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


def grey_crop(image: str = "camera", size: int | None = 256) -> np.ndarray:
    """A centre crop of a bundled scikit-image image as uint8 greyscale.

    Parameters
    ----------
    image : str
        The name of a function in ``skimage.data`` (``"camera"``, ``"astronaut"``,
        ``"coins"``, …); colour images are converted to grey.
    size : int or None
        Side of the square centre crop; None keeps the whole image.

    Returns
    -------
    ndarray of uint8
        ``(size, size)``.

    Raises
    ------
    ValueError
        ``size`` is larger than the image.

    Examples
    --------
    >>> from napari_dip import samples
    >>> grey = samples.grey_crop("astronaut", size=32)
    >>> grey.shape, grey.dtype
    ((32, 32), dtype('uint8'))
    """
    from skimage import color

    pixels = getattr(data, image)()
    if pixels.ndim == 3:
        pixels = (color.rgb2gray(pixels[..., :3]) * 255).round().astype(np.uint8)
    return _crop(pixels, size)


def noisy(
    sigma: float = 25, size: int | None = 256, seed: int = 0, image: str = "camera"
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian noise of std ``sigma`` (in 0–255 units) on a centre crop of a uint8 image.

    Parameters
    ----------
    sigma : float
        Standard deviation of the noise, in 0–255 units.
    size : int or None
        Side of the square centre crop; None keeps the whole image.
    seed : int
        Same seed, same noise.
    image : str
        A ``skimage.data`` image; a colour one (``"astronaut"``) stays ``(H, W, 3)``.

    Returns
    -------
    noisy : ndarray of uint8
        The noisy image, rounded and clipped to 0–255 as a camera would record it.
    clean : ndarray of uint8
        The crop without noise, same shape.

    Examples
    --------
    >>> from napari_dip import samples
    >>> noisy, clean = samples.noisy(sigma=25, size=32)
    >>> noisy.shape, noisy.dtype, clean.shape
    ((32, 32), dtype('uint8'), (32, 32))
    >>> samples.noisy(size=32, image="astronaut")[0].shape
    (32, 32, 3)
    """
    clean = _crop(getattr(data, image)(), size)
    rng = np.random.default_rng(seed)
    values = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8), clean


def damaged(
    fraction: float = 0.5, size: int | None = 256, seed: int = 0, image: str = "camera"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A crop with ``fraction`` of its pixels missing at random (set to 0) plus a few scratches.

    Parameters
    ----------
    fraction : float
        Share of pixels removed at random (0 to 1), before the scratches are added.
    size : int or None
        Side of the square centre crop; None keeps the whole image.
    seed : int
        Same seed, same damage.
    image : str
        A ``skimage.data`` image.

    Returns
    -------
    damaged : ndarray
        The crop with the missing pixels set to 0 (the image's dtype).
    mask : ndarray of uint8
        ``(H, W)``, 1 = missing, 0 = known: what :func:`napari_dip.inpaint` takes, and a
        napari Labels layer.
    clean : ndarray
        The undamaged crop.

    Examples
    --------
    >>> from napari_dip import samples
    >>> damaged, mask, clean = samples.damaged(fraction=0.3, size=32)
    >>> mask.dtype, int(mask.max()), int(damaged[mask == 1].max())
    (dtype('uint8'), 1, 0)
    """
    clean = _crop(getattr(data, image)(), size)
    rng = np.random.default_rng(seed)
    mask = (rng.random(clean.shape[:2]) < fraction).astype(np.uint8)
    h, w = mask.shape
    for _ in range(3):  # a few thin scratches, the kind of damage a person would paint
        row = int(rng.integers(h // 8, h - h // 8))
        mask[row : row + 2, int(rng.integers(0, w // 2)) : int(rng.integers(w // 2, w))] = 1
    broken = clean.copy()
    broken[mask.astype(bool)] = 0
    return broken, mask, clean


def degrade_resolution(
    image: np.ndarray, factor: int, channel_axis: int | None = None
) -> np.ndarray:
    """Downsample ``image`` by ``factor`` with the operator super-resolution inverts.

    The anti-aliased bicubic downsampling with pixel centres aligned that
    :func:`napari_dip.super_resolve` fits its result to: apply it to an image of your own to
    try super-resolution where the truth is known. Rows and columns beyond a multiple of
    ``factor`` are dropped. Imports torch.

    Parameters
    ----------
    image : ndarray
        ``(H, W)``, or multichannel with ``channel_axis``.
    factor : int
        Downsampling factor, an integer >= 2.
    channel_axis : int, optional
        The channel axis of a multichannel image.

    Returns
    -------
    ndarray of float32
        ``(H // factor, W // factor)`` (channels kept), not rounded or clipped.

    Examples
    --------
    >>> from napari_dip import samples
    >>> low = samples.degrade_resolution(samples.grey_crop(size=32), 2)
    >>> low.shape, low.dtype
    ((16, 16), dtype('float32'))
    """
    import torch

    from .engine import Downsample

    chw = image[None] if channel_axis is None else np.moveaxis(image, channel_axis, 0)
    h, w = chw.shape[-2:]
    chw = chw[:, : h - h % factor, : w - w % factor]
    x = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))[None]
    low = Downsample(factor)(x)[0].numpy()
    return low[0] if channel_axis is None else np.moveaxis(low, 0, channel_axis)


def low_resolution(
    factor: int = 4, size: int | None = 256, image: str = "camera"
) -> tuple[np.ndarray, np.ndarray]:
    """A crop downsampled by ``factor``, with the crop as the truth.

    Parameters
    ----------
    factor : int
        Downsampling factor (>= 2), see :func:`degrade_resolution`.
    size : int or None
        Side of the square centre crop (the truth); None keeps the whole image.
    image : str
        A ``skimage.data`` image; a colour one stays colour.

    Returns
    -------
    low : ndarray of uint8
        ``size // factor`` on a side, rounded and clipped to 0–255.
    clean : ndarray of uint8
        The crop itself.

    Examples
    --------
    >>> from napari_dip import samples
    >>> low, clean = samples.low_resolution(factor=4, size=32)
    >>> low.shape, clean.shape
    ((8, 8), (32, 32))
    """
    clean = _crop(getattr(data, image)(), size)
    channel_axis = -1 if clean.ndim == 3 else None
    low = degrade_resolution(clean, factor, channel_axis)
    return np.clip(np.rint(low), 0, 255).astype(np.uint8), clean


def _gaussian_1d(n: int, centre: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``(K, n)``: one sampled Gaussian profile per centre/sigma, peak 1."""
    grid = np.arange(n, dtype=np.float64)
    return np.exp(-0.5 * ((grid[None, :] - centre[:, None]) / sigma[:, None]) ** 2)


def photon_limited(
    shape: tuple[int, int, int] = (16, 128, 128),
    photons: float = 20.0,
    background: float = 2.0,
    gain: float = 1.0,
    offset: float = 100.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic, photon-limited fluorescence stack: cells and puncta over a smooth
    background, with Poisson (shot) noise, as a uint16 camera would record it.

    The clean stack is made of blurred ellipsoidal "cells" (some extending over several
    slices) and small bright puncta, scaled so the brightest voxel expects ``background +
    photons`` photons; the smooth background expects between ``background`` and twice it. Each
    voxel's photon count is drawn from a Poisson law, then recorded as ``offset + gain ·
    count``, rounded to uint16 — the camera model of ``noise="poisson"`` (see
    :func:`napari_dip.denoise`), so pass ``gain`` and ``offset`` there, or let them be
    estimated.

    Parameters
    ----------
    shape : (Z, Y, X)
        Stack shape; a 2D ``(Y, X)`` shape gives a single plane.
    photons : float
        Expected photons at the brightest structure, above the background (low = noisy).
    background, gain, offset : float
        Background photons, intensity units per photon, camera offset.
    seed : int
        Same seed, same stack.

    Returns
    -------
    noisy : ndarray of uint16
        The recorded stack.
    clean : ndarray of float32
        The expected recorded value, ``offset + gain · expected photons``, same shape.

    Raises
    ------
    ValueError
        A shape that is not 2D or 3D with positive sides; ``photons`` or ``gain`` not
        positive, or a negative ``background``.

    Examples
    --------
    >>> from napari_dip import samples
    >>> noisy, clean = samples.photon_limited((2, 32, 32), photons=20)
    >>> noisy.shape, noisy.dtype, clean.dtype
    ((2, 32, 32), dtype('uint16'), dtype('float32'))
    >>> int(noisy.min()) >= 100  # the camera offset
    True
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"shape must be (Z, Y, X) or (Y, X) with positive sides, got {shape}")
    if not (photons > 0 and background >= 0 and gain > 0):
        raise ValueError("photons and gain must be positive and background >= 0")
    planar = len(shape) == 2
    nz, ny, nx = (1, *shape) if planar else shape
    rng = np.random.default_rng(seed)
    area = ny * nx / (128 * 128)
    n_cells, n_puncta = max(1, round(12 * area)), max(1, round(40 * area))
    signal = np.zeros((nz, ny, nx))
    for count, size, depth, brightness in (
        (n_cells, (5.0, 10.0), (1.5, 4.0), (0.3, 0.7)),  # cells: broad, dimmer, some z extent
        (n_puncta, (1.0, 1.8), (0.8, 1.5), (0.5, 1.0)),  # puncta: small and bright
    ):
        cz = rng.uniform(0, nz - 1, count) if nz > 1 else np.zeros(count)
        cy, cx = rng.uniform(0, ny - 1, count), rng.uniform(0, nx - 1, count)
        sy, sx = rng.uniform(*size, count), rng.uniform(*size, count)
        sz = rng.uniform(*depth, count)
        amp = rng.uniform(*brightness, count)
        gz, gy, gx = _gaussian_1d(nz, cz, sz), _gaussian_1d(ny, cy, sy), _gaussian_1d(nx, cx, sx)
        signal += np.einsum("k,kz,ky,kx->zyx", amp, gz, gy, gx, optimize=True)
    signal /= signal.max()
    zz, yy, xx = np.meshgrid(
        np.linspace(0, 1, nz), np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij"
    )
    smooth = np.sin(np.pi * yy) * np.cos(0.5 * np.pi * xx) + 0.5 * zz
    smooth = (smooth - smooth.min()) / max(np.ptp(smooth), 1e-12)
    expected = background * (1 + smooth) + photons * signal
    counts = rng.poisson(expected)
    noisy = np.clip(np.rint(offset + gain * counts), 0, np.iinfo(np.uint16).max)
    clean = (offset + gain * expected).astype(np.float32)
    if planar:
        noisy, clean = noisy[0], clean[0]
    return noisy.astype(np.uint16), clean


def _expected_photons(
    sharp: np.ndarray, psf: np.ndarray, photons: float
) -> tuple[np.ndarray, np.ndarray]:
    """``sharp`` scaled to ``photons`` at its brightest pixel, and its expected photons after
    the blur by ``psf`` (normalised; reflected at the border)."""
    from scipy import ndimage

    x = photons * np.asarray(sharp, np.float64) / np.max(sharp)
    kernel = np.asarray(psf, np.float64)
    return x, np.maximum(ndimage.convolve(x, kernel / kernel.sum(), mode="reflect"), 0.0)


def blur_and_count(
    sharp: np.ndarray,
    psf: np.ndarray,
    photons: float = 30.0,
    gain: float = 2.0,
    offset: float = 100.0,
    read_noise: float = 2.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Image ``sharp`` through a microscope: blurred by ``psf``, then recorded with photon
    (Poisson) and read (Gaussian) noise by a camera with ``gain`` and ``offset``.

    ``sharp`` (2D, or 3D with a 3D ``psf``) is scaled so its brightest pixel expects
    ``photons``; the blur reflects at the border. The record is ``offset + gain ·
    Poisson(blurred photons) + N(0, read_noise²)``, rounded to uint16 — the camera model of
    ``noise="poisson-gaussian"``.

    Returns
    -------
    observed : ndarray of uint16
        The recorded, blurred image.
    clean : ndarray of float32
        The sharp image in the same units, ``offset + gain · photons · sharp / max(sharp)``:
        the target of deconvolution.

    Raises
    ------
    ValueError
        ``psf`` and ``sharp`` of different dimensions, a negative or all-zero ``sharp``, or
        ``photons`` or ``gain`` not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_dip import psf, samples
    >>> sharp = np.zeros((32, 32)); sharp[16, 16] = 1.0
    >>> observed, clean = samples.blur_and_count(sharp, psf.gaussian_psf(2.0), photons=1000)
    >>> observed.dtype, int(clean.max())       # offset 100 + gain 2 · 1000 photons
    (dtype('uint16'), 2100)
    >>> int(observed.max()) < 2100             # the blur spreads the point's light
    True
    """
    x = np.asarray(sharp, dtype=np.float64)
    kernel = np.asarray(psf, dtype=np.float64)
    if kernel.ndim != x.ndim:
        raise ValueError(f"the PSF is {kernel.ndim}D but the image is {x.ndim}D")
    if not (photons > 0 and gain > 0):
        raise ValueError("photons and gain must be positive")
    if x.min() < 0 or not x.max() > 0:
        raise ValueError("the sharp image must be non-negative and not all zero")
    x, blurred = _expected_photons(x, kernel, photons)
    rng = np.random.default_rng(seed)
    values = offset + gain * rng.poisson(blurred) + rng.normal(0.0, read_noise, x.shape)
    observed = np.clip(np.rint(values), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return observed, (offset + gain * x).astype(np.float32)


def blurred_cells(
    shape: tuple[int, int] | tuple[int, int, int] = (8, 128, 128),
    sigma: float = 2.0,
    photons: float = 30.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded, blurred and photon-limited fluorescence stack with its PSF and clean version.

    The cells and puncta of :func:`photon_limited` (without background), each slice blurred by
    a 2D Gaussian PSF of ``sigma`` pixels and recorded by :func:`blur_and_count`'s camera (gain
    2, offset 100, read noise 2): restore it with :func:`napari_dip.deconvolve` (``axes="ZYX"``,
    ``psf=psf``, ``noise="poisson-gaussian"``).

    Returns
    -------
    observed : ndarray of uint16
        The recorded stack, ``shape``.
    psf : ndarray of float32
        The 2D PSF, summing to 1.
    clean : ndarray of float32
        The sharp stack in the same units.

    Examples
    --------
    >>> from napari_dip import samples
    >>> observed, psf, clean = samples.blurred_cells((2, 32, 32))
    >>> observed.shape, observed.dtype, psf.shape, clean.shape
    ((2, 32, 32), dtype('uint16'), (17, 17), (2, 32, 32))
    """
    from .psf import gaussian_psf

    _, sharp = photon_limited(shape, photons=1.0, background=0.0, gain=1.0, offset=0.0, seed=seed)
    kernel = gaussian_psf(sigma)
    planes = sharp.reshape((-1, *sharp.shape[-2:]))
    recorded = [
        blur_and_count(plane, kernel, photons * plane.max() / sharp.max(), seed=seed + k)
        for k, plane in enumerate(planes)
    ]
    observed = np.stack([r[0] for r in recorded]).reshape(sharp.shape)
    clean = np.stack([r[1] for r in recorded]).reshape(sharp.shape)
    return observed, kernel, clean
