"""Inpainting fused with the biharmonic fill (``fuse="biharmonic"``): the weight chosen on the
known pixels self-validation holds out, its checks, and runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import napari_dip
from napari_dip import samples
from napari_dip.pipeline.fusion import biharmonic_fill, fuse_filled

RUN = {"device": "cpu", "tile": None, "seed": 0}


def _psnr(x: np.ndarray, clean: np.ndarray, where: np.ndarray | None = None) -> float:
    err = (np.asarray(x, np.float64) - clean) ** 2
    return float(-10 * np.log10(np.mean(err if where is None else err[where])))


def _smoothed_fill(y: np.ndarray, known: np.ndarray, width: float) -> np.ndarray:
    """Normalised convolution: a second estimator of the missing pixels, unlike biharmonic."""
    k = known.astype(np.float64)
    return ndimage.gaussian_filter(y * k, width) / np.maximum(
        ndimage.gaussian_filter(k, width), 1e-9
    )


@pytest.mark.parametrize("width", [0.7, 3.0])
def test_the_held_out_weight_is_the_one_the_clean_image_would_pick(width):
    """A sharp (0.7 px) and a blurry (3 px) rival fill, fitted without the held-out pixels:
    the weight read on those pixels is within 0.1 of the one the clean image picks on the
    missing pixels, and the blend is at least as good there as the better of the two."""
    clean = samples.grey_crop("camera", 96) / 255.0
    rng = np.random.default_rng(0)
    known = rng.random(clean.shape) > 0.5
    held = known & (rng.random(clean.shape) < 0.1)
    y = np.where(known, clean, 0.0)
    h = _smoothed_fill(y, known & ~held, width)
    f = fuse_filled(y[None], known[None], held[None], h[None])
    g = biharmonic_fill(y[None], known[None])[0]
    missing = ~known
    grid = np.linspace(0, 1, 101)
    errors = [np.mean((g + w * (h - g) - clean)[missing] ** 2) for w in grid]
    assert abs(f.weight - grid[int(np.argmin(errors))]) < 0.1
    best = max(_psnr(h, clean, missing), _psnr(g, clean, missing))
    assert _psnr(f.estimate[0], clean, missing) >= best - 0.05
    np.testing.assert_allclose(f.estimate[0][known], (g + f.weight * (h - g))[known], atol=1e-6)


def test_no_held_out_pixel_leaves_the_estimate_as_it_is():
    y = np.random.default_rng(1).random((1, 16, 16))
    known = np.ones_like(y, bool)
    known[:, 4:8, 4:8] = False
    h = y + 0.1
    f = fuse_filled(y, known, np.zeros_like(known), h)
    assert f.weight == 1.0
    np.testing.assert_allclose(f.estimate, h, rtol=1e-6)


def test_a_volume_slice_with_no_known_pixel_keeps_the_network_fill():
    """The fill runs plane by plane: a missing slice of a volume piece (nothing to fill it
    from) keeps the network's estimate instead of zeros; the other slices are blended."""
    rng = np.random.default_rng(3)
    y = rng.random((1, 3, 24, 24))
    known = rng.random(y.shape) > 0.5
    known[:, 1] = False
    held = known & (rng.random(y.shape) < 0.2)
    h = y + rng.normal(0, 0.05, y.shape)
    f = fuse_filled(y, known, held, h)
    np.testing.assert_allclose(f.estimate[:, 1], h[:, 1], rtol=1e-6)
    g = biharmonic_fill(y, known)
    np.testing.assert_allclose(f.estimate[:, 0], (g + f.weight * (h - g))[:, 0], atol=1e-6)


@pytest.fixture(scope="module")
def holes():
    clean = (samples.grey_crop("moon", 64) / 255.0).astype(np.float32)
    mask = np.random.default_rng(2).random(clean.shape) < 0.5  # True: missing
    return np.where(mask, 0, clean).astype(np.float32), mask, clean


def _run(image, mask, **options):
    steps = napari_dip.restore_steps(
        image, task="inpaint", mask=mask, steps=400, **{**RUN, **options}
    )
    return list(steps)[-1]


def test_a_fused_inpainting_beats_the_network_alone_and_says_its_weight(holes):
    """End to end on a seeded crop: the fused result beats the same run unfused on the
    missing pixels, the snapshot carries the weight, and the inputs are left as they were."""
    image, mask, clean = holes
    before = image.copy(), mask.copy()
    plain = _run(image, mask, fuse="none")
    fused = _run(image, mask, fuse="biharmonic")
    assert plain.fusion_weight is None
    assert 0 < fused.fusion_weight < 1
    assert _psnr(fused.result(), clean, mask) > _psnr(plain.result(), clean, mask) + 0.5
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(mask, before[1])


def test_fuse_biharmonic_is_checked_when_the_request_is_made(holes):
    image, mask, _ = holes
    with pytest.raises(ValueError, match="needs task='inpaint'"):
        napari_dip.denoise(image, fuse="biharmonic", **RUN)
    with pytest.raises(ValueError, match="needs stop='validation' or 'auto'"):
        napari_dip.inpaint(image, mask, stop="wmv", fuse="biharmonic", **RUN)


def test_auto_fuses_inpainting_with_self_validation_only():
    """``fuse="auto"`` (the default) means biharmonic for an inpainting stopped by
    self-validation, and nothing where no pixel is held out, for other tasks, or with an
    uncertainty map (calibrated on unfused fits)."""
    from napari_dip.pipeline.request import make_request

    image = np.zeros((16, 16), np.float32)
    mask = np.zeros(image.shape, bool)
    mask[4:6, 4:6] = True

    def fusion(task, **options):
        extra = {"mask": mask} if task == "inpaint" else {}
        return make_request(image, task=task, **extra, **options).options.fuse

    assert fusion("inpaint") == fusion("inpaint", stop="validation") == "biharmonic"
    assert fusion("inpaint", stop="wmv") == fusion("inpaint", stop="none") == "none"
    assert fusion("inpaint", uncertainty=True) == "none"
    assert fusion("denoise") == fusion("super_resolve", factor=2) == "none"
    assert fusion("inpaint", uncertainty=True, fuse="biharmonic") == "biharmonic"  # as asked
