"""Intensities: dtypes kept, percentile normalisation mapped back exactly, constant and
saturated images, a shared range for tiles/slices."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import napari_dip
from napari_dip import samples
from napari_dip._arrays import from_unit, intensity_range, prepare_image, to_dtype

FAST = {"steps": 3, "stop": "none", "device": "cpu", "update_every": 3}


def _round_trip(image: np.ndarray, **kwargs) -> np.ndarray:
    unit, layout = prepare_image(image, **kwargs)
    return to_dtype(from_unit(unit, layout), layout.dtype)


@pytest.mark.parametrize(
    ("dtype", "lo", "hi"),
    [
        (np.uint8, 0, 255),
        (np.uint16, 0, 65535),
        (np.int32, -1_000_000, 3_000_000),  # < 2**22: exact through the float32 engine
        (np.int16, -32768, 32767),
    ],
)
def test_integer_identity_round_trip_is_exact(dtype, lo, hi, rng) -> None:
    image = rng.integers(lo, hi, (17, 23), endpoint=True).astype(dtype)
    image[0, 0], image[-1, -1] = lo, hi  # the full range of the type
    back = _round_trip(image)
    assert back.dtype == image.dtype
    np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_identity_round_trip_keeps_dtype_and_values(dtype, rng) -> None:
    image = (rng.normal(1e3, 400, (17, 23))).astype(dtype)
    back = _round_trip(image)
    assert back.dtype == image.dtype
    np.testing.assert_allclose(back, image, rtol=2e-6, atol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
def test_denoise_returns_the_input_dtype_and_range(dtype, rng, one_torch_thread) -> None:
    scale = {np.uint8: 200, np.uint16: 4000, np.int32: 70_000, np.float32: 0.01}[dtype]
    image = (rng.random((36, 40)) * scale).astype(dtype)
    before = image.copy()
    out = napari_dip.denoise(image, **FAST)
    np.testing.assert_array_equal(image, before)  # never modified
    assert out.dtype == image.dtype and out.shape == image.shape
    assert image.min() <= out.min() and out.max() <= image.max()


def test_percentile_normalisation_maps_back_exactly_without_clipping(rng) -> None:
    image = rng.integers(100, 400, (32, 32)).astype(np.uint16)
    image[3, 4], image[20, 9] = 60000, 2  # a hot pixel and a dead one
    unit, layout = prepare_image(image, normalize=(1, 99))
    assert (layout.lo, layout.hi) == tuple(np.percentile(image, (1, 99)))
    assert unit.max() > 100 and unit.min() < 0  # the outliers lie outside [0, 1] ...
    back = to_dtype(from_unit(unit, layout), layout.dtype)
    np.testing.assert_array_equal(back, image)  # ... and come back exactly
    assert 0.4 < np.median(unit) < 0.6  # the bulk of the range is used, not squeezed


def test_percentile_normalisation_through_denoise(rng, one_torch_thread) -> None:
    image = rng.integers(100, 400, (36, 40)).astype(np.uint16)
    image[3, 4] = 60000
    out = napari_dip.denoise(image, normalize=(0.5, 99.5), **FAST)
    assert out.dtype == np.uint16
    low, high = np.percentile(image, (0.5, 99.5))
    assert low - 1 <= out.min() and out.max() <= high + 1  # the network's reach: the range


def test_bad_normalize_is_named() -> None:
    image = np.arange(64.0).reshape(8, 8)
    with pytest.raises(ValueError, match="0 <= low < high <= 100"):
        prepare_image(image, normalize=(99, 1))
    with pytest.raises(TypeError, match="pair of percentiles"):
        prepare_image(image, normalize=5)


def test_constant_image_is_a_clear_error() -> None:
    for image in (np.full((8, 8), 7, np.uint16), np.zeros((8, 8), np.float32)):
        with pytest.raises(ValueError, match="constant"):
            napari_dip.denoise(image, **FAST)
    sparse = np.zeros((20, 20))
    sparse[3, 3] = 5.0  # not constant, but its percentiles are
    with pytest.raises(ValueError, match="widen normalize"):
        prepare_image(sparse, normalize=(1, 99))
    assert prepare_image(sparse)[1].hi == 5.0  # min/max is fine


def test_saturated_image_warns(rng) -> None:
    image = rng.integers(0, 200, (40, 40)).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_image(image)  # nothing at 255: no warning
        prepare_image(samples.noisy(sigma=25)[0])  # 1 % noise clipped at 255: no warning
    image[:4] = 255  # 10 % saturated
    with pytest.warns(UserWarning, match=r"10\.0% of image's pixels are saturated at 255"):
        prepare_image(image)


def test_shared_range_for_tiles_and_slices(rng) -> None:
    stack = rng.normal(50, 10, (3, 16, 16)).astype(np.float32)
    lo, hi = intensity_range(stack)
    assert (lo, hi) == (float(stack.min()), float(stack.max()))
    units = [prepare_image(plane, value_range=(lo, hi))[0] for plane in stack]
    np.testing.assert_allclose(np.concatenate(units), (stack - lo) / (hi - lo), atol=1e-6)
    assert intensity_range(stack, (5, 95)) == tuple(np.percentile(stack, (5, 95)))
    with pytest.raises(ValueError, match="value_range"):
        prepare_image(stack[0], value_range=(3.0, 3.0))
