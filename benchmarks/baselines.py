"""Classical baselines: what a user would pick instead of DIP, under one calling convention.

``method(observed, **known) -> restored``: float64 in the observed image's units, the clean
image's shape. ``known`` is what the task tells (``sigma``, ``mask``, ``factor``, ``psf``,
``gain``, ``offset``, ``read_noise``; ``clean`` for oracle variants only); each method reads
what it needs and ignores the rest. :data:`REGISTRY` lists the tasks each applies to and what
it is given that a user would not have (``oracle``), so tables can mark it.

Tasks: "denoise" (Gaussian, 0–255 units, grey or (H, W, 3) colour), "photon" (Poisson–Gaussian
camera data, 2D or a stack), "inpaint", "super_resolve", "deconvolve" (2D or 3D, camera data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

# TV's weight per unit of (estimated) σ, both in 0..1 units. From the tuning images only: the
# best weights of a grid on camera and astronaut at σ = 25 were 0.08 and 0.06 (σ = 0.098;
# benchmarks/results/classical_256.md), i.e. ≈ 0.7 σ.
TV_PER_SIGMA = 0.7
RL_ITERATIONS = 30  # a common default; the oracle variant shows what the best count gives
# Wiener's balance per unit of noise-to-signal ratio. From the tuning images only (camera,
# coins, moon, astronaut grey, 256², Gaussian PSF σ = 1.6, 5/30/100 photons): of 0.5–10,
# 3 gave the best mean PSNR (24.34 dB; 1: 23.94, 10: 24.16).
WIENER_PER_NSR = 3.0


def _colour(x: np.ndarray) -> bool:
    return x.ndim == 3 and x.shape[-1] == 3


def _axis(x: np.ndarray) -> int | None:
    """scikit-image's ``channel_axis`` for ``x``: -1 for (H, W, 3) colour, else None."""
    return -1 if _colour(x) else None


def _sigma(y: np.ndarray) -> float:
    """Noise std of ``y`` (its units) by wavelet MAD (scikit-image's ``estimate_sigma``)."""
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(y, average_sigmas=True, channel_axis=_axis(y)))


# --- Gaussian denoising (0–255 units; computed in 0..1) ------------------------------------


def bm3d_sigma_given(observed: np.ndarray, *, sigma: float, **_: object) -> np.ndarray:
    """BM3D (``bm3d_rgb`` for colour) told the true σ — an oracle advantage."""
    import bm3d

    y = np.asarray(observed, dtype=np.float64) / 255
    fn = bm3d.bm3d_rgb if _colour(y) else bm3d.bm3d
    return np.asarray(fn(y, sigma / 255), dtype=np.float64) * 255


def bm3d_sigma_estimated(observed: np.ndarray, **_: object) -> np.ndarray:
    """BM3D with σ from ``estimate_sigma``: the fair, no-ground-truth variant."""
    y = np.asarray(observed, dtype=np.float64)
    return bm3d_sigma_given(y, sigma=_sigma(y))


def nl_means(observed: np.ndarray, **_: object) -> np.ndarray:
    """Non-local means as scikit-image's gallery sets it: σ estimated, h = 0.8 σ, fast mode."""
    from skimage.restoration import denoise_nl_means

    y = np.asarray(observed, dtype=np.float64) / 255
    options = {"patch_size": 5, "patch_distance": 6, "channel_axis": _axis(y)}
    return denoise_nl_means(y, h=0.8 * _sigma(y), fast_mode=True, **options) * 255


def tv_chambolle(observed: np.ndarray, **_: object) -> np.ndarray:
    """TV (Chambolle) with weight ``TV_PER_SIGMA`` × estimated σ: no oracle grid."""
    from skimage.restoration import denoise_tv_chambolle

    y = np.asarray(observed, dtype=np.float64) / 255
    weight = TV_PER_SIGMA * _sigma(y)
    return denoise_tv_chambolle(y, weight=weight, channel_axis=_axis(y)) * 255


# --- photon (Poisson–Gaussian) denoising ---------------------------------------------------


def bm3d_anscombe(
    observed: np.ndarray, *, gain: float, offset: float, read_noise: float = 0.0, **_: object
) -> np.ndarray:
    """BM3D after the generalised Anscombe transform and its unbiased inverse; plane by plane.

    Each plane is stabilised to unit noise, scaled to 0..1 for BM3D (σ = 1/range), denoised
    and mapped back with the closed-form unbiased inverse (Mäkitalo & Foi 2013): the same
    pipeline as napari-dip's ``fuse="bm3d"`` for photon counts.
    """
    from napari_dip.pipeline.fusion import stabilised

    return stabilised("bm3d", observed, gain, offset, read_noise)


def bm3d_anscombe_estimated(observed: np.ndarray, **_: object) -> np.ndarray:
    """:func:`bm3d_anscombe` with gain/offset/read noise from ``estimate_noise`` (fair)."""
    from napari_dip._noise import estimate_noise

    p = estimate_noise(np.asarray(observed, dtype=np.float64))
    return bm3d_anscombe(observed, gain=p.gain, offset=p.offset, read_noise=p.read_noise)


# --- inpainting and super-resolution -------------------------------------------------------


def biharmonic(observed: np.ndarray, *, mask: np.ndarray, **_: object) -> np.ndarray:
    """Biharmonic inpainting of the ``mask`` (True = missing) pixels."""
    from skimage.restoration import inpaint_biharmonic

    x = np.asarray(observed, dtype=np.float64)
    return inpaint_biharmonic(x, mask.astype(bool), channel_axis=_axis(x))


def bicubic(observed: np.ndarray, *, factor: int, **_: object) -> np.ndarray:
    """Cubic-spline upsampling by ``factor``, centre-aligned like ``degrade_resolution``.

    ``resize`` maps pixel areas (output pixel j's centre at (j + ½)/factor − ½ in the input),
    the same grid as torch's ``align_corners=False`` downsampling used to make the input.
    """
    from skimage.transform import resize

    x = np.asarray(observed, dtype=np.float64)
    shape = (x.shape[0] * factor, x.shape[1] * factor, *x.shape[2:])
    return resize(x, shape, order=3, anti_aliasing=False, mode="reflect", preserve_range=True)


# --- deconvolution (camera data: work in photons, report in ADU) ----------------------------
# scikit-image's RL convolves with zero padding and its Wiener filters are periodic (FFT):
# both misread the image's edges as light falling off a cliff and ring there (RL(30), camera
# 64², 100 photons: 19.6 dB unpadded, 25.3 dB padded). So each method works on the photon
# counts mirror-padded by one PSF size per side (what the degradation's ndimage
# ``mode="reflect"`` assumes, and what a careful user does), and the result is cropped back.


def _photons(observed: np.ndarray, gain: float, offset: float) -> np.ndarray:
    return np.maximum((np.asarray(observed, dtype=np.float64) - offset) / gain, 0.0)


def _padded(
    observed: np.ndarray, psf: np.ndarray, gain: float, offset: float
) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Photon counts mirror-padded by ``psf.shape`` per side, and the slices that undo it."""
    y = _photons(observed, gain, offset)
    widths = [(n, n) for n in psf.shape]
    core = tuple(slice(n, n + size) for n, size in zip(psf.shape, y.shape, strict=True))
    return np.pad(y, widths, mode="symmetric"), core


def _fit_psf(psf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``psf`` centre-cropped to fit ``shape`` (odd sides), renormalised: the FFT-based Wiener
    filters pad the PSF to the image, so it may not be larger (a deep PSF on an 8-plane stack).
    """
    cut = []
    for n, s in zip(psf.shape, shape, strict=True):
        keep = min(n, s if s % 2 else s - 1)
        start = (n - keep) // 2
        cut.append(slice(start, start + keep))
    fitted = np.asarray(psf, dtype=np.float64)[tuple(cut)]
    return fitted / fitted.sum()


def richardson_lucy(
    observed: np.ndarray,
    *,
    psf: np.ndarray,
    gain: float = 1.0,
    offset: float = 0.0,
    num_iter: int = RL_ITERATIONS,
    **_: object,
) -> np.ndarray:
    """scikit-image's Richardson–Lucy on the offset-free photon counts, ``num_iter`` steps."""
    from skimage.restoration import richardson_lucy as rl

    y, core = _padded(observed, psf, gain, offset)
    out = rl(y, psf.astype(np.float64), num_iter=num_iter, clip=False)[core]
    return out * gain + offset


def rl_iterates(y: np.ndarray, psf: np.ndarray, num_iter: int) -> Iterator[np.ndarray]:
    """Richardson–Lucy one iterate at a time: scikit-image's update, start and ε exactly."""
    from scipy.signal import convolve

    estimate = np.full(y.shape, 0.5)
    mirror = np.flip(psf)
    for _ in range(num_iter):
        blurred = convolve(estimate, psf, mode="same") + 1e-12
        estimate = estimate * convolve(y / blurred, mirror, mode="same")
        yield estimate


def rl_oracle_path(
    observed: np.ndarray,
    psf: np.ndarray,
    clean: np.ndarray,
    gain: float = 1.0,
    offset: float = 0.0,
    max_iter: int = 300,
    patience: int = 30,
) -> tuple[np.ndarray, int, list[float]]:
    """USES THE GROUND TRUTH: RL's iterate closest (MSE) to ``clean``, its count, every MSE.

    RL's error against the truth falls then rises (semi-convergence), so the search stops
    ``patience`` iterations after the best one (or at ``max_iter``).
    """
    y, core = _padded(observed, psf, gain, offset)
    best, best_iter, errors = None, 0, []
    truth = np.asarray(clean, dtype=np.float64)
    for k, estimate in enumerate(rl_iterates(y, psf.astype(np.float64), max_iter), start=1):
        result = estimate[core] * gain + offset
        errors.append(float(np.mean((result - truth) ** 2)))
        if errors[-1] == min(errors):
            best, best_iter = result, k
        elif k - best_iter >= patience:
            break
    assert best is not None, "max_iter must be >= 1"
    return best, best_iter, errors


def richardson_lucy_oracle(
    observed: np.ndarray,
    *,
    psf: np.ndarray,
    clean: np.ndarray,
    gain: float = 1.0,
    offset: float = 0.0,
    **_: object,
) -> np.ndarray:
    """Richardson–Lucy stopped at its best iteration against ``clean`` (an oracle)."""
    return rl_oracle_path(observed, psf, clean, gain, offset)[0]


def wiener(
    observed: np.ndarray,
    *,
    psf: np.ndarray,
    gain: float = 1.0,
    offset: float = 0.0,
    read_noise: float = 0.0,
    **_: object,
) -> np.ndarray:
    """Wiener–Tikhonov (Laplacian prior), balance = ``WIENER_PER_NSR`` × noise-to-signal ratio.

    The ratio comes from the data and the camera model: the mean shot-noise variance plus the
    read noise's, over the counts' variance less that noise. No grid, no ground truth.
    """
    from skimage.restoration import wiener as sk_wiener

    y = _photons(observed, gain, offset)
    noise_var = float(np.mean(y)) + (read_noise / gain) ** 2
    signal_var = max(float(np.var(y)) - noise_var, 1e-3 * noise_var)
    balance = WIENER_PER_NSR * noise_var / max(signal_var, 1e-12)
    padded, core = _padded(observed, psf, gain, offset)
    out = sk_wiener(padded, _fit_psf(psf, padded.shape), balance, clip=False)[core]
    return out * gain + offset


def unsupervised_wiener(
    observed: np.ndarray,
    *,
    psf: np.ndarray,
    gain: float = 1.0,
    offset: float = 0.0,
    seed: int = 0,
    **_: object,
) -> np.ndarray:
    """scikit-image's unsupervised Wiener (balance estimated by Gibbs sampling), seeded.

    2D only: scikit-image's sampler uses 2D FFTs.
    """
    from skimage.restoration import unsupervised_wiener as sk_unsupervised

    y, core = _padded(observed, psf, gain, offset)
    scale = max(float(y.max()), 1e-12)
    out, _chains = sk_unsupervised(y / scale, _fit_psf(psf, y.shape), clip=False, rng=seed)
    return out[core] * scale * gain + offset


# --- registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """One method: its name, function, tasks, the ``known`` keys it reads, its oracle edge,
    and the spatial dimensions it handles (a stack of planes counts as 2D for "photon")."""

    name: str
    method: Callable[..., np.ndarray]
    tasks: tuple[str, ...]
    uses: tuple[str, ...] = ()
    oracle: str = ""  # what it is given that a user would not know; "" = fair
    ndims: tuple[int, ...] = (2, 3)


_CAM = ("gain", "offset", "read_noise")  # the camera model's parameters
_PSF = ("psf", "gain", "offset")  # what deconvolution is told: the PSF and the camera
_DEC = ("deconvolve",)
_RL_ORACLE = "iteration count chosen on the clean image"
REGISTRY: tuple[Baseline, ...] = (
    Baseline("BM3D (σ given)", bm3d_sigma_given, ("denoise",), ("sigma",), "true σ"),
    Baseline("BM3D (σ estimated)", bm3d_sigma_estimated, ("denoise",)),
    Baseline("NL-means (σ estimated)", nl_means, ("denoise",)),
    Baseline("TV Chambolle (0.7 σ estimated)", tv_chambolle, ("denoise",)),
    Baseline("GAT + BM3D (camera given)", bm3d_anscombe, ("photon",), _CAM, "camera calibration"),
    Baseline("GAT + BM3D (camera estimated)", bm3d_anscombe_estimated, ("photon",)),
    Baseline("biharmonic", biharmonic, ("inpaint",), ("mask",)),
    Baseline("bicubic", bicubic, ("super_resolve",), ("factor",)),
    Baseline(f"Richardson–Lucy ({RL_ITERATIONS} it.)", richardson_lucy, _DEC, _PSF),
    Baseline(
        "Richardson–Lucy (oracle it.)", richardson_lucy_oracle, _DEC, (*_PSF, "clean"), _RL_ORACLE
    ),
    Baseline("Wiener (3 × NSR balance)", wiener, _DEC, (*_PSF, "read_noise")),
    Baseline("unsupervised Wiener", unsupervised_wiener, _DEC, _PSF, ndims=(2,)),
)


def for_task(task: str, ndim: int | None = None) -> list[Baseline]:
    """The baselines that apply to ``task`` (and to ``ndim``-D data for "deconvolve")."""
    found = [
        b
        for b in REGISTRY
        if task in b.tasks and (ndim is None or task != "deconvolve" or ndim in b.ndims)
    ]
    if not found:
        raise ValueError(f"no baselines for task {task!r}")
    return found
