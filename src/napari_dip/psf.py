"""Point-spread functions: checking a user's PSF, and Gaussian and widefield models.

NumPy only (SciPy's Bessel functions for the widefield model), so the array and napari faces
can check a PSF before any torch is loaded. Every PSF returned here is a float32 copy that is
non-negative, sums to 1 and is centred at index ``size // 2`` along each axis, the centre that
:class:`~.blur.Convolution` assumes (for even sizes, the later of the two middle pixels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["NEGATIVE_TOLERANCE", "check_psf", "gaussian_psf", "resample_psf", "widefield_psf"]

NEGATIVE_TOLERANCE = 1e-3  # negative values down to −1e-3 × max are clipped to 0, below: error
OFF_CENTRE = 0.25  # centre of mass further than this fraction of the size from size // 2: error


def check_psf(psf: object, ndim_image: int, image_shape: Sequence[int]) -> np.ndarray:
    """A checked, normalised float32 copy of ``psf`` for an image of spatial ``image_shape``.

    ``ndim_image`` is 2 for images (``image_shape`` is ``(H, W)``) and 3 for volumes
    (``(D, H, W)``). An image needs a 2D PSF; a volume takes a 2D PSF (blur in Y and X, slice by
    slice) or a 3D one. Leading length-1 axes beyond that are dropped (a ``(1, h, w)`` stack
    read from a TIFF). A measured PSF minus its background may dip slightly below 0: values down
    to ``−NEGATIVE_TOLERANCE × max`` are set to 0, lower ones are an error. Even sizes are
    allowed; the centre is at ``size // 2``. The input is never modified.

    Parameters
    ----------
    psf : array_like
        The point-spread function, integer or float.
    ndim_image : int
        2 for images, 3 for volumes.
    image_shape : sequence of int
        The image's spatial shape: ``(H, W)`` or ``(D, H, W)``.

    Returns
    -------
    ndarray of float32
        2D or 3D, non-negative, summing to 1.

    Raises
    ------
    TypeError
        The PSF is not an array of real numbers (bool, complex, object or string dtype).
    ValueError
        Empty; NaN or infinite values; significantly negative values; all zero or a sum ≤ 0;
        the wrong number of dimensions; larger than the image along an axis; centre of mass
        off-centre.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_dip import psf
    >>> box = psf.check_psf(np.ones((3, 3)), 2, (32, 32))
    >>> box.dtype, float(box.sum())
    (dtype('float32'), 1.0)
    >>> psf.check_psf(np.ones((3, 3, 3)), 2, (32, 32))
    Traceback (most recent call last):
    ...
    ValueError: the PSF for an image must be 2D, got shape (3, 3, 3)
    """
    if ndim_image not in (2, 3):
        raise ValueError(f"ndim_image must be 2 (images) or 3 (volumes), got {ndim_image!r}")
    image_shape = tuple(int(n) for n in image_shape)
    if len(image_shape) != ndim_image:
        raise ValueError(
            f"image_shape must have {ndim_image} entries (the spatial shape), got {image_shape}"
        )
    try:
        arr = np.asarray(psf)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the PSF cannot be read as an array ({err})") from None
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"the PSF must be an array of real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)  # a copy: the caller's array is never modified

    allowed = (2,) if ndim_image == 2 else (2, 3)
    while arr.ndim > max(allowed) and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in allowed:
        want = "2D" if ndim_image == 2 else "2D or 3D"
        kind = "an image" if ndim_image == 2 else "a volume"
        raise ValueError(f"the PSF for {kind} must be {want}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"the PSF is empty (shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise ValueError("the PSF has NaN or infinite values")
    top = float(np.abs(arr).max()) or 1.0
    arr = arr / top  # scaled first, so that sums of huge values do not overflow

    peak = arr.max()
    if peak <= 0 or arr.sum() <= 0:
        what = "all zero" if not arr.any() else "not positive overall"
        raise ValueError(
            f"the PSF is {what} (sum {arr.sum() * top:.3g}); it must sum to a positive value"
        )
    low = arr.min()
    if low < -NEGATIVE_TOLERANCE * peak:
        raise ValueError(
            f"the PSF has significantly negative values (min {low * top:.3g}, max "
            f"{peak * top:.3g}); values down to {NEGATIVE_TOLERANCE:g} × max are clipped to 0 "
            "(subtract less background)"
        )
    arr = np.clip(arr, 0.0, None)

    spatial = image_shape[-arr.ndim :]
    if any(m > n for m, n in zip(arr.shape, spatial, strict=True)):
        raise ValueError(f"the PSF {arr.shape} is larger than the image {spatial} along an axis")

    total = arr.sum()
    for axis, m in enumerate(arr.shape):
        profile = arr.sum(axis=tuple(a for a in range(arr.ndim) if a != axis))
        com = float(profile @ np.arange(m)) / total
        if abs(com - m // 2) > OFF_CENTRE * m:
            raise ValueError(
                f"the PSF looks off-centre: its centre of mass along axis {axis} is at {com:.1f}, "
                f"but the convolution assumes the centre at size // 2 = {m // 2}; crop or shift "
                "it so the peak is in the middle"
            )
    return (arr / total).astype(np.float32)


def gaussian_psf(
    sigma: float | Sequence[float], size: int | Sequence[int] | None = None, ndim: int | None = None
) -> np.ndarray:
    """A Gaussian PSF, each pixel the Gaussian's integral over its area (exact for small σ).

    Parameters
    ----------
    sigma : float or sequence of float
        Standard deviation in pixels, one for all axes or one per axis, e.g.
        ``(sigma_z, sigma_y, sigma_x)``. A sigma of 0 is a delta along that axis.
    size : int or sequence of int, optional
        Shape; by default odd and covering ±4σ along each axis.
    ndim : int, optional
        2 or 3; by default ``len(sigma)`` for a sequence, else 2.

    Returns
    -------
    ndarray of float32
        Centred at ``size // 2``, summing to 1.

    Raises
    ------
    ValueError
        A negative or non-finite sigma, the wrong number of sigmas or sizes, ``ndim`` not 2
        or 3.

    Examples
    --------
    >>> from napari_dip import psf
    >>> kernel = psf.gaussian_psf(1.0)          # odd, ±4σ: 9 × 9
    >>> kernel.shape, float(kernel.sum())
    ((9, 9), 1.0)
    >>> psf.gaussian_psf((2.0, 1.0, 1.0)).shape  # (σz, σy, σx): a 3D PSF
    (17, 9, 9)
    >>> psf.gaussian_psf(1.0, size=5).shape
    (5, 5)
    """
    sigmas = [float(s) for s in np.atleast_1d(sigma)]
    if ndim is None:
        ndim = len(sigmas) if np.ndim(sigma) else 2
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    if len(sigmas) == 1:
        sigmas *= ndim
    if len(sigmas) != ndim:
        raise ValueError(f"sigma must be one number or {ndim}, got {sigma!r}")
    if not all(math.isfinite(s) and s >= 0 for s in sigmas):
        raise ValueError(f"sigma must be finite and non-negative, got {sigma!r}")
    sizes = _sizes(size, ndim, [2 * math.ceil(4 * s) + 1 for s in sigmas])

    psf = np.ones((1,) * ndim)
    for axis, (s, m) in enumerate(zip(sigmas, sizes, strict=True)):
        x = np.arange(m) - m // 2
        if s == 0:
            profile = (x == 0).astype(np.float64)
        else:
            cdf = [
                0.5 * math.erf(v / (s * math.sqrt(2))) for v in np.append(x - 0.5, m - m // 2 - 0.5)
            ]
            profile = np.diff(cdf)
        psf = psf * profile.reshape([-1 if a == axis else 1 for a in range(ndim)])
    return (psf / psf.sum()).astype(np.float32)


def widefield_psf(
    na: float,
    wavelength: float,
    refractive_index: float,
    pixel_size: float,
    size: int | Sequence[int] | None = None,
    z_step: float | None = None,
    nz: int | None = None,
    oversample: int = 3,
) -> np.ndarray:
    """A widefield fluorescence PSF: the scalar Born–Wolf model of an aberration-free objective.

    The intensity at lateral distance ``r`` and defocus ``z`` is (Born & Wolf, *Principles of
    Optics*, §8.8; the defocus phase of Gibson & Lanni 1991 without aberrations)::

        h(r, z) ∝ | ∫₀¹ J₀(k·NA·r·ρ) · exp(i·k·z·√(n² − NA²ρ²)) ρ dρ |²,   k = 2π / λ,

    which in focus is the Airy pattern ``(2·J₁(v)/v)²``, ``v = k·NA·r``, first dark ring at
    ``0.61·λ/NA``. Each pixel averages ``oversample²`` samples over its area.

    Parameters
    ----------
    na, wavelength, refractive_index : float
        Numerical aperture, emission wavelength and immersion refractive index (``na < n``).
    pixel_size : float
        Lateral pixel size in the units of ``wavelength`` (e.g. µm).
    size : int or (int, int), optional
        Lateral shape ``(Y, X)``; by default odd, to 4 dark-ring radii beyond the widest plane's
        geometric cone.
    z_step, nz : float and int, optional
        Plane spacing (same units) and number of planes of a 3D PSF ``(nz, Y, X)``, focus at
        plane ``nz // 2``; both or neither (a 2D in-focus PSF).
    oversample : int
        Samples per pixel side.

    Returns
    -------
    ndarray of float32
        ``(Y, X)`` or ``(nz, Y, X)``, summing to 1.

    Raises
    ------
    ValueError
        A parameter that is not positive, ``refractive_index <= na``, only one of ``z_step``
        and ``nz``.

    Examples
    --------
    A 1.4 NA oil objective, green emission (0.52 µm), 65 nm pixels:

    >>> from napari_dip import psf
    >>> airy = psf.widefield_psf(1.4, 0.52, 1.515, 0.065)
    >>> airy.shape, round(float(airy.sum()), 6)
    ((29, 29), 1.0)
    >>> psf.widefield_psf(1.4, 0.52, 1.515, 0.065, size=33, z_step=0.2, nz=5).shape
    (5, 33, 33)
    """
    from scipy.special import j0, roots_legendre

    for name, value in (("na", na), ("wavelength", wavelength), ("pixel_size", pixel_size)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(refractive_index) and refractive_index > na):
        raise ValueError(
            f"refractive_index must be larger than the NA ({na}), got {refractive_index!r}"
        )
    if (z_step is None) != (nz is None):
        raise ValueError("give both z_step and nz for a 3D PSF, or neither for a 2D one")
    if nz is not None and (int(nz) != nz or nz < 1 or not (z_step > 0)):
        raise ValueError(f"nz must be a positive integer and z_step positive, got {nz}, {z_step}")
    if int(oversample) != oversample or oversample < 1:
        raise ValueError(f"oversample must be a positive integer, got {oversample!r}")

    k = 2 * math.pi / wavelength
    z = np.zeros(1) if nz is None else (np.arange(int(nz)) - int(nz) // 2) * float(z_step)
    ring = 0.61 * wavelength / na
    cone = np.abs(z).max() * na / math.sqrt(refractive_index**2 - na**2)
    half = math.ceil((cone + 4 * ring) / pixel_size)
    ny, nx = _sizes(size, 2, [2 * half + 1] * 2)

    # Sample positions: `oversample` per pixel side, symmetric about each pixel centre.
    sub = ((np.arange(oversample) + 0.5) / oversample - 0.5) * pixel_size
    ys = ((np.arange(ny) - ny // 2)[:, None] * pixel_size + sub).ravel()
    xs = ((np.arange(nx) - nx // 2)[:, None] * pixel_size + sub).ravel()
    r = np.hypot(ys[:, None], xs[None, :])

    # Radial profile on a fine grid, pupil integral by Gauss–Legendre (enough nodes for the
    # oscillations of J₀ and of the defocus phase), then interpolated onto the samples.
    radii = np.arange(0.0, r.max() + pixel_size, pixel_size / (4 * oversample))
    span = k * na * radii[-1] + k * np.abs(z).max() * refractive_index
    nodes, weights = roots_legendre(64 + math.ceil(2 * span))
    rho, weights = (nodes + 1) / 2, weights / 2
    bessel = j0(k * na * np.outer(radii, rho))
    axial = np.sqrt(refractive_index**2 - (na * rho) ** 2)  # n·cos θ at pupil radius ρ
    phase = np.exp(1j * k * np.outer(axial, z))
    profile = np.abs(bessel @ ((weights * rho)[:, None] * phase)) ** 2  # (radii, z)

    block = (ny, oversample, nx, oversample)  # each plane averaged over pixels as it is made
    planes = [
        np.interp(r, radii, profile[:, i]).reshape(block).mean(axis=(1, 3)) for i in range(len(z))
    ]
    psf = np.stack(planes)
    if nz is None:
        psf = psf[0]
    return (psf / psf.sum()).astype(np.float32)


def _sizes(size: int | Sequence[int] | None, ndim: int, default: list[int]) -> list[int]:
    if size is None:
        return default
    sizes = [int(s) for s in np.atleast_1d(size)]
    if len(sizes) == 1:
        sizes *= ndim
    if len(sizes) != ndim or min(sizes) < 1 or np.any(np.atleast_1d(size) != sizes):
        raise ValueError(f"size must be one positive integer or {ndim}, got {size!r}")
    return sizes


def resample_psf(psf: np.ndarray, factor: int) -> np.ndarray:
    """``psf`` (sampled on the input's pixels) on a grid ``factor`` times finer in Y and X,
    for deconvolution with super-resolution: linear interpolation about the centre, odd sides,
    normalised to sum 1.

    Parameters
    ----------
    psf : ndarray
        A checked PSF (see :func:`check_psf`), 2D or 3D; Z is kept as it is.
    factor : int
        The upscaling factor; 1 returns ``psf`` itself.

    Returns
    -------
    ndarray of float32

    Examples
    --------
    >>> from napari_dip import psf
    >>> fine = psf.resample_psf(psf.gaussian_psf(1.0), 2)
    >>> fine.shape, round(float(fine.sum()), 6)
    ((19, 19), 1.0)
    """
    from scipy import ndimage

    if factor == 1:
        return psf
    lateral = [m * factor + (1 - (m * factor) % 2) for m in psf.shape[-2:]]
    shape = (*psf.shape[:-2], *lateral)
    grids = []
    for axis, size in enumerate(shape):
        f = factor if axis >= psf.ndim - 2 else 1
        grids.append(psf.shape[axis] // 2 + (np.arange(size) - size // 2) / f)
    coords = np.meshgrid(*grids, indexing="ij")
    fine = ndimage.map_coordinates(psf.astype(np.float64), coords, order=1, cval=0.0)
    fine = np.clip(fine, 0.0, None)
    return (fine / fine.sum()).astype(np.float32)
