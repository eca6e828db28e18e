"""Benchmark images and degradations: seeded, offline, split into tuning and held-out sets.

Every degradation returns ``(observed, extra, clean)``: what a user would have, what they (or
an oracle) know about the degradation (``sigma``, ``mask``, ``factor``, ``psf``, camera
``gain``/``offset``/``read_noise`` …), and the truth to score against, in ``observed``'s units.
Only scikit-image's bundled images are used (the ones that load without a network).
"""

from __future__ import annotations

import argparse

import numpy as np
from skimage import data

# TUNING: the images earlier benchmarks already chose settings on (presets, stop rules, step
# counts were compared on them), so results on them are optimistic. Settings may be chosen
# here.
TUNING = ("camera", "astronaut", "coins", "moon", "chelsea", "immunohistochemistry")
# HELD_OUT: never used to choose anything; report final figures on these. Varied content:
# regular texture (brick), fine random texture (grass), dense edges (gravel), microscopy
# (cell: one cell on a noisy background; retina: fundus vessels), sparse point sources on black
# (hubble_deep_field) and natural colour photos (coffee, rocket). Left out: text, page, horse
# (binary or near-binary), clock (motion-blurred and flat), cat (the same image as chelsea),
# microaneurysms (102² only), colorwheel/checkerboard (synthetic).
HELD_OUT = (
    "brick",
    "grass",
    "gravel",
    "cell",
    "coffee",
    "rocket",
    "retina",
    "hubble_deep_field",
)
# The images that also come in colour, (H, W, 3).
COLOUR = frozenset(
    {
        "astronaut",
        "chelsea",
        "immunohistochemistry",
        "coffee",
        "rocket",
        "retina",
        "hubble_deep_field",
    }
)
# Crop centres (row, column in the full image) where the centre would show almost nothing:
# cell's centre is empty background, retina's is the flat fovea. Chosen by looking at the
# content only, never by any result.
_CENTRES = {"cell": (374, 428), "retina": (420, 600)}

# Synthetic photon-limited stacks (napari_dip.samples.photon_limited): the seed makes the
# content, so the sets are seeds. Seed 0 is the one earlier benchmarks used.
TUNING_SEEDS = (0, 1, 2)
HELD_OUT_SEEDS = (1000, 1001, 1002)
PHOTONS = (5, 30, 100)
# The camera of the photon benchmarks: ADU per photon, offset (ADU), read noise (ADU).
GAIN, OFFSET, READ_NOISE = 2.0, 100.0, 2.0


def names(split: str, colour: bool = False) -> tuple[str, ...]:
    """Image names of ``split`` ("tuning" or "held_out"); only the colour ones if ``colour``."""
    chosen = {"tuning": TUNING, "held_out": HELD_OUT}[split]
    return tuple(n for n in chosen if n in COLOUR) if colour else chosen


def image(name: str, size: int | None = 256, colour: bool = False) -> np.ndarray:
    """A ``size``² crop of a bundled image: (H, W) uint8 grey, or (H, W, 3) uint8 colour.

    Grey is ``rgb2gray`` rounded to uint8 (what a grey pipeline would see). The crop is
    centred, or around ``_CENTRES[name]`` where the centre is empty, kept inside the image.
    """
    from skimage.color import rgb2gray

    pixels = np.asarray(getattr(data, name)())
    if colour:
        if pixels.ndim != 3:
            raise ValueError(f"{name} is a grey image; colour=True needs one of {sorted(COLOUR)}")
        pixels = pixels[..., :3]
    elif pixels.ndim == 3:
        pixels = np.rint(rgb2gray(pixels[..., :3]) * 255).astype(np.uint8)
    if size is None:
        return pixels.astype(np.uint8)
    h, w = pixels.shape[:2]
    if size > min(h, w):
        raise ValueError(f"size {size} is larger than {name} ({h}×{w})")
    cy, cx = _CENTRES.get(name, (h / 2, w / 2))
    top = int(np.clip(round(cy - size / 2), 0, h - size))
    left = int(np.clip(round(cx - size / 2), 0, w - size))
    return np.ascontiguousarray(pixels[top : top + size, left : left + size]).astype(np.uint8)


# --- Gaussian noise ------------------------------------------------------------------------


def gaussian_noise(
    clean: np.ndarray, sigma: float, seed: int = 0, clip: bool = True
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Additive white Gaussian noise of std ``sigma`` (0–255 units) on a uint8 image.

    ``clip=True``: rounded and clipped to uint8, as a camera records it. ``clip=False``: the
    exact float64 ``clean + noise`` — clipping makes the noise non-Gaussian and biased near 0
    and 255, which breaks risk estimators (SURE, discrepancy) that assume it is Gaussian.
    """
    rng = np.random.default_rng(seed)
    values = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    observed = np.clip(np.rint(values), 0, 255).astype(np.uint8) if clip else values
    return observed, {"sigma": float(sigma)}, clean


# --- inpainting ----------------------------------------------------------------------------


def random_mask(shape: tuple[int, ...], fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """(H, W) bool, True = missing: each pixel missing with probability ``fraction``."""
    return np.random.default_rng(seed).random(shape[:2]) < fraction


def block_mask(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """(H, W) bool, True = missing: a few 8–24 px blocks and thin (1–2 px) scratches.

    The damage a person paints over (dust, tape, text): large connected holes, which random
    masks never have. Counts scale with the area (8 blocks and 5 scratches at 256²).
    """
    from skimage.draw import line

    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    mask = np.zeros((h, w), dtype=bool)
    area = h * w / 256**2
    for _ in range(max(1, round(8 * area))):
        bh, bw = (int(rng.integers(8, 25)) for _ in range(2))
        top, left = int(rng.integers(0, max(1, h - bh))), int(rng.integers(0, max(1, w - bw)))
        mask[top : top + bh, left : left + bw] = True
    for _ in range(max(1, round(5 * area))):
        r0, r1 = (int(v) for v in rng.integers(0, h, 2))
        c0, c1 = (int(v) for v in rng.integers(0, w, 2))
        rr, cc = line(r0, c0, r1, c1)
        width = int(rng.integers(1, 3))
        for d in range(width):
            mask[np.clip(rr + d, 0, h - 1), cc] = True
    return mask


def inpainting(
    clean: np.ndarray, kind: str = "random", fraction: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Missing pixels set to 0: ``kind`` "random" (``fraction`` missing) or "blocks".

    ``extra["mask"]`` is (H, W) bool, True = missing (all channels of a colour pixel).
    """
    if kind == "random":
        mask = random_mask(clean.shape, fraction, seed)
    elif kind == "blocks":
        mask = block_mask(clean.shape, seed)
    else:
        raise ValueError(f"kind must be 'random' or 'blocks', got {kind!r}")
    observed = clean.copy()
    observed[mask] = 0
    return observed, {"mask": mask}, clean


# --- super-resolution ----------------------------------------------------------------------


def low_resolution(
    clean: np.ndarray, factor: int, quantise: bool = True
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Downsample by ``factor`` with napari-dip's own operator (anti-aliased bicubic).

    ``quantise``: round to uint8 as a saved image would be; else the float32 output. ``clean``
    is trimmed to a multiple of ``factor``.
    """
    from napari_dip.samples import degrade_resolution  # imports torch: only when needed

    h, w = clean.shape[:2]
    clean = clean[: h - h % factor, : w - w % factor]
    low = degrade_resolution(clean, factor, channel_axis=-1 if clean.ndim == 3 else None)
    observed = np.clip(np.rint(low), 0, 255).astype(np.uint8) if quantise else low
    return observed, {"factor": int(factor)}, clean


# --- blur and photon noise -----------------------------------------------------------------


def gaussian_psf(sigma: float | tuple[float, ...] = 1.6, ndim: int = 2) -> np.ndarray:
    """A normalised Gaussian PSF, ``sigma`` per axis (one value: all axes), ±3σ wide (odd)."""
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (ndim,))
    axes = [np.arange(-int(np.ceil(3 * s)), int(np.ceil(3 * s)) + 1) for s in sigmas]
    grids = np.meshgrid(*axes, indexing="ij")
    psf = np.exp(-0.5 * sum((g / s) ** 2 for g, s in zip(grids, sigmas, strict=True)))
    return psf / psf.sum()


def clean_volume(shape: tuple[int, int, int] = (8, 256, 256), seed: int = 0) -> np.ndarray:
    """A synthetic fluorescence volume in 0..1 (peak 1): photon_limited's cells and puncta."""
    from napari_dip.samples import photon_limited

    _, clean = photon_limited(shape, photons=1.0, background=0.0, gain=1.0, offset=0.0, seed=seed)
    return clean.astype(np.float64) / clean.max()


def blur_poisson(
    clean: np.ndarray,
    psf: np.ndarray,
    photons: float,
    seed: int = 0,
    gain: float = GAIN,
    offset: float = OFFSET,
    read_noise: float = READ_NOISE,
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Blur by ``psf``, then Poisson–Gaussian camera noise; 2D or 3D (psf.ndim == clean.ndim).

    ``clean`` is scaled so its brightest pixel expects ``photons``; the observation is
    ``offset + gain · Poisson(blurred photons) + N(0, read_noise²)`` rounded to uint16 (ADU).
    The returned clean image is the SHARP one in ADU, ``offset + gain · photons · clean``: the
    target of deconvolution. ``extra`` has the psf, camera parameters and ``blurred`` (the
    expected observation, the target of denoising only).
    """
    from napari_dip.samples import _expected_photons, blur_and_count

    observed, sharp = blur_and_count(clean, psf, photons, gain, offset, read_noise, seed=seed)
    _, blurred = _expected_photons(clean, psf, photons)
    extra = {
        "psf": psf,
        "gain": gain,
        "offset": offset,
        "read_noise": read_noise,
        "photons": photons,
        "blurred": (offset + gain * blurred).astype(np.float32),
    }
    return observed, extra, sharp


def photon_stack(
    photons: float, seed: int, shape: tuple[int, int, int] = (8, 256, 256)
) -> tuple[np.ndarray, dict, np.ndarray]:
    """A photon-limited uint16 stack from :func:`napari_dip.samples.photon_limited`.

    Shot noise only (no read noise), camera ``GAIN`` ADU/photon and ``OFFSET``. Use
    ``TUNING_SEEDS`` to choose settings and ``HELD_OUT_SEEDS`` to report.
    """
    from napari_dip.samples import photon_limited

    noisy, clean = photon_limited(shape, photons=photons, gain=GAIN, offset=OFFSET, seed=seed)
    extra = {"gain": GAIN, "offset": OFFSET, "read_noise": 0.0, "photons": photons}
    return noisy, extra, clean


# --- one case per task (the stopping and uncertainty benchmarks) ---------------------------

TASKS = ("denoise", "inpaint", "super_resolve", "deconvolve")


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that pick the cases of :func:`task_case`: tasks, split, images, size."""
    parser.add_argument("--tasks", nargs="*", default=["denoise"], choices=TASKS)
    parser.add_argument("--split", choices=("tuning", "held_out"), default="tuning")
    parser.add_argument("--images", nargs="*")
    parser.add_argument("--size", type=int, default=128)


def task_case(
    task: str, name: str, size: int, sigma: float, seed: int
) -> tuple[np.ndarray, dict, np.ndarray, float]:
    """One ``task`` case on image ``name``: the observed image, the API's task arguments, the
    truth and the PSNR's data range (denoise: σ; inpaint: 50 % random; SR ×4; deconvolve:
    Gaussian PSF σ = 2 px, 30 photons)."""
    clean = image(name, size)
    if task == "denoise":
        observed, _, _ = gaussian_noise(clean, sigma, seed=seed)
        return observed, {}, clean, 255.0
    if task == "inpaint":
        observed, extra, _ = inpainting(clean, "random", seed=seed)
        return observed, {"task": "inpaint", "mask": extra["mask"]}, clean, 255.0
    if task == "super_resolve":
        observed, extra, sharp = low_resolution(clean, 4)
        return observed, {"task": "super_resolve", "factor": 4}, sharp, 255.0
    psf = gaussian_psf(2.0)
    observed, extra, sharp = blur_poisson(clean, psf, 30.0, seed=seed)
    kwargs = {"task": "deconvolve", "psf": psf, "noise": "poisson-gaussian"}
    return observed, kwargs, sharp, float(sharp.max() - extra["offset"])
