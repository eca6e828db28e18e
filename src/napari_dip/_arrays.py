"""Array handling between the user's numpy world and the engine's ``(C, H, W)`` floats in [0, 1].

Nothing here imports torch. The user's arrays are only read, never written.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Layout",
    "check_mask_values",
    "from_unit",
    "intensity_range",
    "pad_reflect",
    "prepare_image",
    "prepare_mask",
    "to_dtype",
]

Normalize = tuple[float, float] | None
SATURATED_WARN_FRACTION = 0.01  # warn when this share of pixels lies in plateaus at the maximum
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the engine computes in float32


@dataclass(frozen=True)
class Layout:
    """How to map engine output back: the original dtype, intensity range and axes."""

    dtype: np.dtype
    lo: float
    hi: float
    channel_axis: int | None  # normalised to a non-negative index, None for greyscale
    ndim: int


def _check_dtype(image: np.ndarray, what: str) -> None:
    if image.dtype == bool:
        raise TypeError(f"{what} is boolean; pass intensities (integer or float), not a mask")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise TypeError(f"{what} has dtype {image.dtype}; expected an integer or float array")


def _channel_axis(ndim: int, channel_axis: int | None) -> int | None:
    if ndim == 2:
        if channel_axis is not None:
            raise ValueError("channel_axis was given but the image is 2D (no channel axis)")
        return None
    if ndim == 3:
        if channel_axis is None:
            raise ValueError(
                "image is 3D: pass channel_axis (e.g. channel_axis=-1 for RGB) for a "
                "multichannel 2D image, or axes (e.g. axes='ZYX') for a stack or volume"
            )
        try:
            if isinstance(channel_axis, bool):
                raise TypeError
            axis = operator.index(channel_axis)
        except TypeError:
            raise TypeError(f"channel_axis must be an integer, got {channel_axis!r}") from None
        if not -3 <= axis < 3:
            raise ValueError(f"channel_axis {channel_axis} is out of range for a 3D image")
        return axis % 3
    raise ValueError(
        f"unsupported number of dimensions: {ndim} (shape must be (H, W), or (H, W, C) with "
        "channel_axis; for stacks, time-lapses and volumes give axes, e.g. axes='TZYX')"
    )


def _check_normalize(normalize: object) -> Normalize:
    if normalize is None or (isinstance(normalize, str) and normalize == "minmax"):
        return None
    try:
        low, high = (float(p) for p in normalize)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise TypeError(
            f"normalize must be None (min/max) or a pair of percentiles like (0.1, 99.9), "
            f"got {normalize!r}"
        ) from None
    if not 0 <= low < high <= 100:
        raise ValueError(
            f"normalize percentiles must satisfy 0 <= low < high <= 100, got {normalize!r}"
        )
    return low, high


class ConstantImageError(ValueError):
    """An image (or slice) with a single value: nothing to restore. A stack keeps such slices
    as they are instead of failing."""


def intensity_range(
    values: np.ndarray, normalize: Normalize = None, what: str = "image"
) -> tuple[float, float]:
    """The ``(lo, hi)`` that :func:`prepare_image` maps to ``(0, 1)``: the min and max of
    ``values``, or the ``normalize`` percentiles of them.

    Pass the values every part shares (a whole stack, or a subsample of one) and give the result
    to :func:`prepare_image` as ``value_range``, so tiles or slices all use one mapping. Raises a
    ValueError if ``values`` hold no range: restoring a constant image would return the same
    constant, so it is more likely a wrong layer or an empty frame than something to run.
    """
    values = np.asarray(values)
    normalize = _check_normalize(normalize)
    if values.size == 0:
        raise ValueError(f"{what} has no known pixels to take an intensity range from")
    if normalize is None:
        lo, hi = float(values.min()), float(values.max())
    else:
        lo, hi = (float(v) for v in np.percentile(values, normalize))
    reach = max(abs(lo), abs(hi))
    if reach > FLOAT32_MAX:
        raise ValueError(
            f"{what} has values of magnitude {reach:.3g}, beyond float32's range (±3.4e38) in "
            "which the network computes: rescale it"
        )
    if not hi > lo:
        if normalize is None or float(values.max()) == float(values.min()):
            raise ConstantImageError(
                f"{what} is constant (every known pixel is {lo:g}): nothing to restore"
            )
        raise ValueError(
            f"the {normalize[0]:g} and {normalize[1]:g} percentiles of {what} are both {lo:g} "
            "(most pixels share one value): widen normalize, or leave it None for min/max"
        )
    return lo, hi


def _warn_saturated(chw: np.ndarray, what: str) -> None:
    """Warn when many pixels sit at the integer type's maximum next to another one there: a
    saturated detector's plateaus. (Noise clipped at the maximum, isolated pixels, is not
    worth a warning: the noisy camera sample has 1 % of those.)"""
    if not np.issubdtype(chw.dtype, np.integer) or chw.shape[-1] < 2:
        return
    top = np.iinfo(chw.dtype).max
    full = chw == top
    plateau = full[..., 1:] & full[..., :-1]
    if np.count_nonzero(plateau) < SATURATED_WARN_FRACTION * plateau.size:
        return
    share = np.count_nonzero(full) / full.size
    warnings.warn(
        f"{share:.1%} of {what}'s pixels are saturated at {top} (the {chw.dtype} maximum): "
        "their true intensities are lost and they are restored as if they were data",
        UserWarning,
        stacklevel=3,
    )


def prepare_image(
    image: np.ndarray,
    channel_axis: int | None = None,
    known: np.ndarray | None = None,
    what: str = "image",
    normalize: Normalize = None,
    value_range: tuple[float, float] | None = None,
) -> tuple[np.ndarray, Layout]:
    """Validate ``image`` and return it as ``(C, H, W)`` float32 in [0, 1], plus its layout.

    The intensity range comes from the known pixels only (``known`` is ``(C or 1, H, W)`` bool),
    so whatever fills the holes of an inpainting input (zeros, NaN) does not distort it; only
    known pixels must be finite. ``normalize=(low, high)`` maps those percentiles (e.g.
    ``(0.1, 99.9)``) to 0 and 1 instead of the min and max, so a few hot pixels do not squeeze
    the rest; values beyond them fall outside [0, 1] and are kept, not clipped, so the mapping
    back (:func:`from_unit`) is exact. ``value_range=(lo, hi)`` imposes a range computed
    elsewhere (:func:`intensity_range` over a whole stack), overriding ``normalize``.
    """
    if not isinstance(image, np.ndarray):
        image = np.asarray(image)
    _check_dtype(image, what)
    axis = _channel_axis(image.ndim, channel_axis)
    chw = image[None] if axis is None else np.moveaxis(image, axis, 0)
    if chw.size == 0:
        raise ValueError(f"{what} is empty (shape {image.shape})")
    if min(chw.shape[1:]) < 2:
        raise ValueError(
            f"{what} must have at least 2 pixels along each spatial axis, got shape {image.shape}"
        )
    values = chw if known is None else chw[np.broadcast_to(known, chw.shape)]
    if values.size == 0:
        raise ValueError("the mask marks every pixel as missing: nothing is known to restore from")
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"{what} contains NaN or infinite values"
            + (" at known pixels" if known is not None else "")
        )
    if value_range is None:
        lo, hi = intensity_range(values, normalize, what)
    else:
        lo, hi = (float(v) for v in value_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"value_range must be two finite numbers lo < hi, got {value_range}")
    _warn_saturated(chw, what)
    unit = (chw.astype(np.float64) - lo) / (hi - lo)
    if known is not None:
        unit = np.where(np.broadcast_to(known, chw.shape), unit, 0.0)
    layout = Layout(image.dtype, lo, hi, axis, image.ndim)
    return np.ascontiguousarray(unit, dtype=np.float32), layout


def prepare_mask(
    mask: np.ndarray, image_shape: tuple[int, ...], channel_axis: int | None
) -> np.ndarray:
    """Turn a user mask (nonzero = missing) into ``(C or 1, H, W)`` bool of *known* pixels."""
    mask = check_mask_values(mask)
    spatial = (
        image_shape
        if channel_axis is None
        else tuple(n for i, n in enumerate(image_shape) if i != channel_axis % len(image_shape))
    )
    if mask.shape == spatial:
        known = (mask == 0)[None]
    elif channel_axis is not None and mask.shape == tuple(image_shape):
        known = np.moveaxis(mask == 0, channel_axis, 0)
    else:
        raise ValueError(
            f"mask shape {mask.shape} does not match the image: expected {spatial}"
            + (f" or {tuple(image_shape)}" if channel_axis is not None else "")
        )
    if not known.any():
        raise ValueError("the mask marks every pixel as missing: nothing is known to restore from")
    return known


def check_mask_values(mask: object) -> np.ndarray:
    """``mask`` as an array of bool, integer or float values without NaN; a ``TypeError`` or
    ``ValueError`` naming the mask otherwise (its shape is checked against the image elsewhere)."""
    if not isinstance(mask, np.ndarray):
        try:
            mask = np.asarray(mask)
        except (TypeError, ValueError) as err:
            raise ValueError(f"mask cannot be read as an array ({err})") from None
    if mask.dtype != bool and not (
        np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)
    ):
        raise TypeError(f"mask has dtype {mask.dtype}; expected bool, integer or float")
    if np.issubdtype(mask.dtype, np.floating) and not np.all(np.isfinite(mask)):
        raise ValueError("mask contains NaN or infinite values")
    return mask


def pad_reflect(
    chw: np.ndarray,
    multiple: int,
    minimum: int = 0,
    multiple_z: int = 1,
    minimum_z: int = 0,
    margin: tuple[int, ...] = (),
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Reflect-pad the spatial axes up to a multiple of ``multiple`` that is at least
    ``minimum``, split evenly on both sides (numpy reflects repeatedly for tiny images).

    A volume ``(C, D, H, W)`` is also padded along Z, to a multiple of ``multiple_z`` that is
    at least ``minimum_z`` (3D networks halve Z less often than Y and X). ``margin`` (one per
    spatial axis) is the least padding on each side, e.g. a PSF's reach for deconvolution.

    Returns the padded array and the (top, left) offset of the original inside it, or
    (front, top, left) for a volume.
    """
    floors = [-(-minimum // multiple) * multiple] * 2
    multiples = [multiple] * 2
    if chw.ndim == 4:
        floors.insert(0, -(-minimum_z // multiple_z) * multiple_z)
        multiples.insert(0, multiple_z)
    sizes = chw.shape[1:]
    margins = tuple(margin) or (0,) * len(sizes)
    pads = [
        max(-(n + 2 * g) % m + 2 * g, f - n)
        for n, m, f, g in zip(sizes, multiples, floors, margins, strict=True)
    ]
    offsets = tuple(p // 2 for p in pads)
    if not any(pads):
        return chw, offsets
    widths = [(0, 0)] + [(o, p - o) for o, p in zip(offsets, pads, strict=True)]
    return np.pad(chw, widths, mode="reflect"), offsets


def from_unit(chw: np.ndarray, layout: Layout) -> np.ndarray:
    """Map engine output ``(C, H, W)`` (normally in [0, 1]) back to the user's axes and
    intensity range (float32; see :func:`to_dtype` for the final cast). Nothing is clipped here.

    The arithmetic is float64, rounded once to float32, so integer images round-trip exactly
    while their values stay within about ±2**22 (every uint8, int16 and uint16 image; the
    engine's float32 limits wider int32 ranges to about 7 significant digits).
    """
    values = (chw.astype(np.float64) * (layout.hi - layout.lo) + layout.lo).astype(np.float32)
    if layout.channel_axis is None:
        return values[0]
    return np.moveaxis(values, 0, layout.channel_axis)


def _float_bounds(dtype: np.dtype) -> tuple[float, float]:
    """The widest float64 interval whose every value casts into integer ``dtype``: float64
    rounds the maximum of a 32- or 64-bit type up, out of its range (2**31 for int32)."""
    info = np.iinfo(dtype)
    low, high = float(info.min), float(info.max)
    if int(high) > info.max:
        high = float(np.nextafter(high, 0.0))
    return low, high


def to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast to ``dtype``: integers are rounded and clipped to the type's range, floats clipped
    to theirs (never wrapped around or turned infinite)."""
    dtype = np.dtype(dtype)
    values = np.asarray(values)
    if np.issubdtype(dtype, np.integer):
        low, high = _float_bounds(dtype)
        if dtype.itemsize >= 4:  # float32 rounds these bounds out of range: clip in float64
            values = values.astype(np.float64)
        return np.clip(np.rint(values), low, high).astype(dtype)
    wider = np.issubdtype(values.dtype, np.floating) and values.dtype.itemsize > dtype.itemsize
    if np.issubdtype(dtype, np.floating) and wider:
        info = np.finfo(dtype)
        return np.clip(values, float(info.min), float(info.max)).astype(dtype)
    return values.astype(dtype)
