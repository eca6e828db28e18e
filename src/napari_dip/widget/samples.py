"""napari's sample data (File ▸ Open Sample ▸ Deep Image Prior): offline (scikit-image's
bundled camera, a synthetic cell stack) and seeded.

Each sample also adds the clean image, hidden, so a result can be compared with the truth.
"""

from __future__ import annotations

from typing import Any

from .. import samples

__all__ = [
    "blurred_cells_sample",
    "blurred_sample",
    "damaged_sample",
    "low_resolution_sample",
    "noisy_sample",
    "photon_limited_sample",
]

LayerData = tuple[Any, dict[str, Any], str]

_FACTOR = 4
BLUR_SIGMA = 2.0  # the blurred sample's Gaussian PSF, in pixels
# The photon-limited stack's camera: what noise="poisson" needs (or estimates)
PHOTON_GAIN, PHOTON_OFFSET = 1.0, 100.0


def _clean(clean: Any, **kwargs: Any) -> LayerData:
    return (clean, {"name": "camera (clean)", "visible": False, **kwargs}, "image")


def noisy_sample() -> list[LayerData]:
    """Camera crop with Gaussian noise (σ = 25 of 255), for the Denoise widget."""
    noisy, clean = samples.noisy(sigma=25, size=256, seed=0)
    return [(noisy, {"name": "camera (noisy)"}, "image"), _clean(clean)]


def damaged_sample() -> list[LayerData]:
    """Camera crop with half its pixels and a few scratches missing, the mask as Labels."""
    broken, mask, clean = samples.damaged(fraction=0.5, size=256, seed=0)
    return [
        (broken, {"name": "camera (damaged)"}, "image"),
        (mask, {"name": "missing pixels", "opacity": 0.5}, "labels"),
        _clean(clean),
    ]


def low_resolution_sample() -> list[LayerData]:
    """Camera crop downsampled 4×, placed so it overlays the (hidden) full-resolution image."""
    low, clean = samples.low_resolution(factor=_FACTOR, size=256)
    offset = (_FACTOR - 1) / 2  # low-res pixel i is centred on full-res coordinate 4i + 1.5
    geometry = {"scale": (_FACTOR, _FACTOR), "translate": (offset, offset)}
    return [(low, {"name": "camera (low resolution)", **geometry}, "image"), _clean(clean)]


def photon_limited_sample() -> list[LayerData]:
    """A synthetic 16 × 128 × 128 fluorescence stack at about 20 photons per structure (Poisson
    noise, uint16, camera offset 100, gain 1), for the Denoise widget's Poisson noise model."""
    noisy, clean = samples.photon_limited(
        (16, 128, 128), photons=20, gain=PHOTON_GAIN, offset=PHOTON_OFFSET, seed=0
    )
    camera = {"gain": PHOTON_GAIN, "offset": PHOTON_OFFSET, "noise": "poisson"}
    return [
        (noisy, {"name": "cells (photon-limited)", "metadata": camera}, "image"),
        (clean, {"name": "cells (clean)", "visible": False}, "image"),
    ]


def blurred_sample() -> list[LayerData]:
    """Camera crop blurred by a Gaussian PSF (σ = 2 px) with a little noise (σ = 2 of 255),
    and that PSF as a hidden layer, for the Deconvolve widget."""
    import numpy as np
    from scipy import ndimage

    from ..psf import gaussian_psf

    clean = samples.grey_crop("camera", size=256)
    kernel = gaussian_psf(BLUR_SIGMA)
    blurred = ndimage.convolve(clean.astype(np.float32), kernel, mode="reflect")
    noisy = blurred + np.random.default_rng(0).normal(0.0, 2.0, blurred.shape)
    observed = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return [
        (observed, {"name": "camera (blurred)"}, "image"),
        (kernel, {"name": f"PSF (Gaussian, σ = {BLUR_SIGMA:g} px)", "visible": False}, "image"),
        _clean(clean),
    ]


def blurred_cells_sample() -> list[LayerData]:
    """A blurred, photon-limited cell stack (Gaussian PSF σ = 2 px, 30 photons, camera gain 2
    and offset 100) with its PSF and the sharp stack, hidden, for the Deconvolve widget."""
    observed, kernel, clean = samples.blurred_cells((8, 128, 128), sigma=BLUR_SIGMA, photons=30)
    return [
        (observed, {"name": "cells (blurred, photon-limited)"}, "image"),
        (kernel, {"name": f"PSF (Gaussian, σ = {BLUR_SIGMA:g} px)", "visible": False}, "image"),
        (clean, {"name": "cells (clean)", "visible": False}, "image"),
    ]
