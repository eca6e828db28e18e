"""Reading a part (a plain image, a slice, a frame or a volume) and its pieces' inputs.

A part is normalised on its own: one intensity mapping and one noise model for all its tiles
(a part's range comes from the whole part, read band by band when it is lazy). numpy only,
except that nothing here runs a fit: it makes the inputs a fit needs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._arrays import Layout, prepare_image, prepare_mask
from .._noise import NoiseParams, choose_noise, noise_terms
from .plan import JobPlan
from .tiles import check_known, global_range, index

__all__ = ["PartData", "prepare_part", "tile_input"]


@dataclass(frozen=True, eq=False)
class PartData:
    """A part read and normalised: what its pieces are cut from.

    ``unit`` is the whole part as the engine's ``(C, H, W)`` or ``(C, D, H, W)`` float32 in
    [0, 1] (None for a tiled part: its tiles are read one at a time from ``source``);
    ``known`` its known pixels (None: all); ``layout`` maps unit values back to the part's own
    axes and range; ``noise`` names the engine's noise model and its terms.
    """

    source: Any
    channel_axis: int | None
    layout: Layout
    unit: np.ndarray | None
    known: np.ndarray | None
    noise: tuple[str, dict[str, float]]
    camera: NoiseParams | None

    @property
    def value_range(self) -> tuple[float, float]:
        return self.layout.lo, self.layout.hi


def _noise(
    plan: JobPlan,
    values: np.ndarray,
    channel_axis: int | None,
    lo: float,
    hi: float,
    known: np.ndarray | None,
) -> tuple[tuple[str, dict[str, float]], NoiseParams | None]:
    o = plan.request.options
    chw = values[None] if channel_axis is None else np.moveaxis(values, channel_axis, 0)
    part = None if known is None else np.broadcast_to(known, chw.shape)
    name = o.noise
    if name == "auto":
        given = any(v is not None for v in (o.gain, o.offset, o.read_noise))
        name = "gaussian" if o.sigma is not None else choose_noise(chw, part, given)[0]
    terms, camera = noise_terms(
        name, chw, lo, hi, part, o.gain, o.offset, o.read_noise, sigma=o.sigma
    )
    return (name, terms), camera


def _tiled(plan: JobPlan, source: Any, channel: int | None, known: Any) -> PartData:
    """A tiled part: one range for every tile (read band by band when lazy), and one noise
    model (from the whole part, or from its central tile when it is lazy)."""
    assert plan.tiles is not None
    o = plan.request.options
    check_known(plan.tiles, known)
    lazy = not isinstance(source, np.ndarray)
    lo, hi = global_range(source, channel, known, o.normalize, band=plan.tiles.tile)
    ndim = len(source.shape)
    if o.noise == "gaussian" or o.sigma is not None:  # needs no data: don't read any
        values, part, axis = np.zeros((2, 2)), None, None
    elif not lazy:
        values, part, axis = source, known, channel
    else:
        rows, cols = list(plan.tiles.tiles())[len(plan.tiles) // 2]
        values = np.asarray(source[index(ndim, channel, rows, cols)])
        part, axis = (None if known is None else known[:, rows, cols]), channel
    noise, camera = _noise(plan, values, axis, lo, hi, part)
    axis_out = None if channel is None else channel % ndim
    layout = Layout(np.dtype(source.dtype), lo, hi, axis_out, ndim)
    return PartData(source, channel, layout, None, known, noise, camera)


def prepare_part(plan: JobPlan, number: int) -> PartData:
    """Read part ``number`` of ``plan`` and normalise it. Raises ``ValueError`` for pixels
    that cannot be restored (NaN or infinite where known, a constant part:
    :class:`~napari_dip._arrays.ConstantImageError`, a noise model that does not fit)."""
    request, stack = plan.request, plan.request.stack
    image, where = request.image, plan.parts[number]
    o = request.options
    if stack is None:
        channel, known = request.channel_axis, request.known
        source = image
    else:
        source = np.asarray(image[where])
        core = stack.core_letters
        mask = None if request.mask is None else stack.piece_mask(request.mask, where)
        if stack.mode == "volume":
            return _volume(plan, source, mask)
        channel = core.index("C") if "C" in core else None
        known = None if mask is None else prepare_mask(mask, source.shape, channel)
    if plan.tiles is not None:
        return _tiled(plan, source, channel, known)
    values = np.asarray(source)  # small enough to fit whole: one read
    unit, layout = prepare_image(values, channel, known, normalize=o.normalize)
    noise, camera = _noise(plan, values, layout.channel_axis, layout.lo, layout.hi, known)
    return PartData(values, channel, layout, unit, known, noise, camera)


def _volume(plan: JobPlan, piece: np.ndarray, mask: np.ndarray | None) -> PartData:
    """A ZYX volume: normalised as ``(C·D, H, W)`` channels (one range), fitted as
    ``(C, D, H, W)``."""
    stack, o = plan.request.stack, plan.request.options
    assert stack is not None
    cdhw = stack.to_engine(piece)
    flat = cdhw.reshape(-1, *cdhw.shape[2:])
    known = None
    if mask is not None:
        missing = stack.volume_mask(mask, cdhw.shape).reshape(flat.shape)
        known = prepare_mask(missing, flat.shape, 0)
    unit, layout = prepare_image(flat, 0, known, normalize=o.normalize)
    noise, camera = _noise(plan, flat, 0, layout.lo, layout.hi, known)
    unit = unit.reshape(cdhw.shape)
    known = None if known is None else known.reshape(cdhw.shape)
    return PartData(piece, 0, layout, unit, known, noise, camera)


def tile_input(
    data: PartData, region: tuple[slice, slice], warned: set[type[Warning]], label: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one tile of a tiled part and normalise it with the part's mapping: the engine's
    ``(C, h, w)`` and its known pixels. Warnings (e.g. saturation) are raised once per kind
    and part (``warned`` remembers them), naming the tile."""
    rows, cols = region
    source = data.source
    tile = np.asarray(source[index(len(source.shape), data.channel_axis, rows, cols)])
    part = None if data.known is None else data.known[:, rows, cols]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unit, _ = prepare_image(tile, data.channel_axis, part, value_range=data.value_range)
    for warning in caught:
        if warning.category not in warned:
            warned.add(warning.category)
            warnings.warn(f"{warning.message} ({label})", warning.category, 3)
    return unit, part
