"""Tile geometry for big images: where overlapping tiles lie and how they are weighted.

numpy only. A DIP network's activations grow with the pixel count, so a big image is cut into
overlapping tiles, one fit each, blended with a separable raised-cosine window whose outer
quarter of every overlap weighs nothing (there a tile's network saw the least context). All
tiles of an image share one intensity mapping and one seed, so tiles agree in brightness and a
tile's result depends on its content only. Denoising (and inpainting small holes) with a
light network on a CPU tiles sooner, for speed, and so does super-resolution: a fit's steps
grow with the side of what it fits (benchmarks/, "tiles").
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._arrays import intensity_range

__all__ = [
    "HEAVY_CHANNELS",
    "MIN_TILE",
    "TILE_WORKERS",
    "TilePlan",
    "check_known",
    "default_tile",
    "global_range",
    "is_lazy",
    "plan_tiles",
    "untiled_limit",
]

# Network output side of a tile by preset cost, on a CPU (see ``default_tile``).
LIGHT_TILE = 512
HEAVY_TILE = 256
# Denoising with a light preset on a CPU: small tiles are faster and no worse. 144 = 18 × 8 is
# a multiple of the 3-scale tile network's 8; 2 × 2 tiles cover 256², 4 × 4 cover 512². The
# side is of the output: super-resolution's input tiles are 144 / factor.
DENOISE_TILE = 144
# ... tiled once the image holds more than this many such tiles' worth of pixels (about 204²).
DENOISE_TILE_AREA = 2
# Full-resolution channel count from which a preset counts as heavy (``paper``: 128).
HEAVY_CHANNELS = 64
# "auto" tiles other images once they hold more than this many CPU tiles' worth of pixels.
AUTO_TILE_AREA = 4
# At most this many pieces are fitted at once in one process by default.
TILE_WORKERS = 8
# At most this many values go into percentile estimates over a lazy or huge image.
SAMPLE = 2**24
# The smallest tile side (pixels) a plan accepts.
MIN_TILE = 16
# Share of an overlap, at each end, where a tile's weight is 0 (see ``_ramp``).
MARGIN = 0.25


def is_lazy(array: object) -> bool:
    """True for array-likes that read on indexing (dask, zarr, h5py): never load them whole."""
    return (
        not isinstance(array, np.ndarray)
        and hasattr(array, "shape")
        and hasattr(array, "dtype")
        and hasattr(array, "__getitem__")
    )


def default_tile(
    full_res_channels: int, device_type: str, factor: int = 1, light: bool = False
) -> tuple[int, int]:
    """The default tile side and overlap, in input pixels.

    Light presets get 512-pixel tiles on a CPU, heavy ones (``paper``) 256, a CUDA GPU twice
    that; super-resolution divides the side by the factor (at least 32). The overlap is 1/8 of
    the side. Denoising, super-resolution and inpainting small holes (``light``,
    ``plan.light_tiles``) with a light preset on a CPU use ``DENOISE_TILE`` output pixels
    instead (over the factor, at least ``MIN_TILE``), for speed.
    """
    if light and device_type == "cpu" and full_res_channels < HEAVY_CHANNELS:
        side = max(DENOISE_TILE // factor, MIN_TILE)
        return side, side // 8
    side = HEAVY_TILE if full_res_channels >= HEAVY_CHANNELS else LIGHT_TILE
    if device_type == "cuda":
        side *= 2
    side = max(side // factor, 32)
    return side, side // 8


def untiled_limit(
    full_res_channels: int, factor: int = 1, device_type: str = "cpu", light: bool = False
) -> int:
    """The most input pixels ``tile="auto"`` restores whole: ``AUTO_TILE_AREA`` CPU tiles
    (1024² for light presets, 512² for heavy ones) whatever the device, or
    ``DENOISE_TILE_AREA`` light tiles when a light preset fits them (``light``) on a CPU."""
    cpu = device_type == "cpu"
    side, _ = default_tile(full_res_channels, "cpu", factor, light and cpu)
    small = light and cpu and full_res_channels < HEAVY_CHANNELS
    return (DENOISE_TILE_AREA if small else AUTO_TILE_AREA) * side * side


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along an axis of length ``n``: full-size tiles, evenly spread, each
    overlapping the next by at least ``overlap`` (one tile if ``n <= tile``)."""
    if n <= tile:
        return [0]
    count = math.ceil((n - overlap) / (tile - overlap))
    return [round(i * (n - tile) / (count - 1)) for i in range(count)]


def _ramp(length: int, before: int, after: int) -> np.ndarray:
    """1D weights: 0, a raised-cosine rise, 1, a fall, 0, for overlaps of ``before`` and
    ``after`` pixels. The outer ``MARGIN`` of an overlap weighs 0; the rise (``sin²``) and the
    neighbour's fall (``cos²``) over the same pixels sum to 1."""
    weights = np.ones(length, np.float64)
    t = np.arange(length) + 0.5
    for size, position in ((before, t), (after, t[::-1])):
        if size > 0:
            margin = int(size * MARGIN)
            ramp = np.clip((position - margin) / (size - 2 * margin), 0.0, 1.0)
            weights = np.minimum(weights, np.sin(np.pi / 2 * ramp) ** 2)
    return weights


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles lie: starts along y and x in input pixels, and the output factor."""

    shape: tuple[int, int]
    tile: int
    overlap: int
    factor: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def tiles(self) -> Iterator[tuple[slice, slice]]:
        """Input regions ``(rows, cols)``, row by row."""
        th, tw = min(self.tile, self.shape[0]), min(self.tile, self.shape[1])
        for y in self.ys:
            for x in self.xs:
                yield slice(y, y + th), slice(x, x + tw)

    def output(self, region: tuple[slice, slice]) -> tuple[slice, slice]:
        """The output region of an input region (``factor`` times larger)."""
        f = self.factor
        return tuple(slice(s.start * f, s.stop * f) for s in region)  # type: ignore[return-value]

    def window(self, region: tuple[slice, slice]) -> np.ndarray:
        """Blending weights ``(h·factor, w·factor)`` float32 of a tile: ramps only on the
        sides that overlap a neighbour, over the width of that overlap."""
        axes = []
        for s, starts in zip(region, (self.ys, self.xs), strict=True):
            i = starts.index(s.start)
            before = starts[i - 1] + (s.stop - s.start) - s.start if i > 0 else 0
            after = s.stop - starts[i + 1] if i + 1 < len(starts) else 0
            f = self.factor
            axes.append(_ramp((s.stop - s.start) * f, before * f, after * f))
        return np.outer(axes[0], axes[1]).astype(np.float32)


def plan_tiles(shape: tuple[int, int], tile: int, overlap: int, factor: int = 1) -> TilePlan:
    """Plan overlapping ``tile``×``tile`` tiles over an image of spatial ``shape``.

    Raises ``ValueError`` for a tile under ``MIN_TILE`` pixels or an overlap that is negative
    or not less than half the tile (the blending ramps of both sides must fit in a tile).
    """
    if isinstance(tile, bool) or not isinstance(tile, int | np.integer) or tile < MIN_TILE:
        raise ValueError(f"tile must be an integer >= {MIN_TILE} (pixels), got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int | np.integer):
        raise ValueError(f"tile_overlap must be an integer, got {overlap!r}")
    if not 0 <= overlap < tile / 2:
        raise ValueError(f"tile_overlap must be >= 0 and < tile/2 = {tile / 2:g}, got {overlap}")
    h, w = shape
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    return TilePlan((h, w), int(tile), int(overlap), int(factor), tuple(ys), tuple(xs))


def spatial_axes(ndim: int, channel_axis: int | None) -> tuple[int, int]:
    """The Y and X axes of an image with ``ndim`` axes and a channel axis (or None)."""
    if channel_axis is None:
        return 0, 1
    c = channel_axis % ndim
    rest = [a for a in range(ndim) if a != c]
    return rest[0], rest[1]


def index(ndim: int, channel_axis: int | None, rows: slice, cols: slice) -> tuple[slice, ...]:
    """The index of the region ``rows, cols`` into an image with a channel axis (or None)."""
    where = [slice(None)] * ndim
    ya, xa = spatial_axes(ndim, channel_axis)
    where[ya], where[xa] = rows, cols
    return tuple(where)


def _bands(source: Any, axis: int, height: int) -> list[slice]:
    """Row bands for a chunk-wise pass: a dask array's own chunks along ``axis`` (each chunk
    is computed once), else bands of ``height`` rows."""
    n = source.shape[axis]
    chunks = getattr(source, "chunks", None)
    if isinstance(chunks, tuple) and chunks and isinstance(chunks[axis], tuple):
        edges = np.cumsum((0, *chunks[axis]))
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
    return [slice(a, min(a + height, n)) for a in range(0, n, height)]


def global_range(
    source: Any,
    channel_axis: int | None,
    known: np.ndarray | None = None,
    normalize: tuple[float, float] | None = None,
    band: int = 512,
) -> tuple[float, float]:
    """The intensity range of ``source``'s known pixels, one for all tiles, read band by band
    (a lazy source one row band at a time; a numpy source in one band). Min and max are exact;
    percentiles come from an evenly strided sample of at most ``SAMPLE`` known values.

    Raises ``ValueError`` when nothing is known, known values are not finite or the image is
    constant; ``TypeError`` for a non-numeric dtype.
    """
    dtype = np.dtype(source.dtype)
    if dtype.kind not in "iuf":
        raise TypeError(f"image has dtype {dtype}; expected an integer or float array")
    ndim = len(source.shape)
    ya, _ = spatial_axes(ndim, channel_axis)
    bands = [slice(None)] if isinstance(source, np.ndarray) else _bands(source, ya, band)
    stride = max(1, math.prod(source.shape) // SAMPLE)
    extremes: list[np.ndarray] = []
    samples: list[np.ndarray] = []
    for rows in bands:
        chw = np.asarray(source[index(ndim, channel_axis, rows, slice(None))])
        chw = chw[None] if channel_axis is None else np.moveaxis(chw, channel_axis % ndim, 0)
        part = None if known is None else known[:, rows]
        values = chw.ravel() if part is None else chw[np.broadcast_to(part, chw.shape)]
        if values.size == 0:
            continue
        if not np.all(np.isfinite(values)):
            where = " at known pixels" if known is not None else ""
            raise ValueError(f"image contains NaN or infinite values{where}")
        extremes.append(np.array([values.min(), values.max()]))
        samples.append(values[::stride])
    if not extremes:
        raise ValueError("the mask marks every pixel as missing: nothing is known to restore from")
    if normalize is None:
        return intensity_range(np.concatenate(extremes))
    return intensity_range(np.concatenate(samples), normalize)


def check_known(plan: TilePlan, known: np.ndarray | None) -> None:
    """Raise ``ValueError`` if a tile has no known pixel (inpainting): its fit would have
    nothing to fit."""
    if known is None:
        return
    for rows, cols in plan.tiles():
        if not known[:, rows, cols].any():
            raise ValueError(
                f"the tile at rows {rows.start}-{rows.stop}, columns {cols.start}-{cols.stop} "
                "has no known pixels: choose a larger tile"
            )
