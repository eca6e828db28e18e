"""Big images: restore overlapping tiles one at a time and blend them without seams.

numpy only (no torch): the caller hands in ``fit_tile``, which restores one normalised tile
and yields snapshots; this module plans the tiles, reads them from the source (a numpy array,
or a lazy dask/zarr array read one tile at a time), and mosaics the results.

Why tiles: a DIP network's activations grow with the pixel count (the ``fast`` preset needs
about 2 GB per megapixel on a CPU, measured; ``paper`` several times that), so a 4096×4096
image does not fit in 24 GB at once. Each tile gets its own fit; only one tile's network,
optimiser and activations exist at a time per worker (``workers`` tiles may be fitted side by
side, each on its own thread: small convolutions keep several CPU cores busier that way than
split over them). Neighbouring tiles overlap and are blended with a
separable raised-cosine window (weights summed and divided), which hides the seams: the outer
quarter of an overlap, where a tile's network saw the least context, gets no weight.

All tiles share one intensity mapping (the whole image's range, found chunk by chunk for lazy
arrays) and one seed (a tile's result depends on its content, not on where it lies), so the
run is deterministic and tiles agree in brightness.
"""

from __future__ import annotations

import functools
import itertools
import math
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ._arrays import (
    Layout,
    from_unit,
    intensity_range,
    prepare_image,
    to_dtype,
)

__all__ = [
    "TILE_WORKERS",
    "TilePlan",
    "TileProgress",
    "check_known",
    "default_tile",
    "global_range",
    "is_lazy",
    "plan_tiles",
    "tile_progress",
    "tiled_steps",
    "untiled_limit",
]

# Network output side of a tile by preset cost, on a CPU (see ``default_tile``).
LIGHT_TILE = 512
HEAVY_TILE = 256
# Denoising with a light preset on a CPU: small tiles are faster and no worse (``default_tile``).
# 144 = 18 × 8, a multiple of the 3-scale tile network's 8 (restore.tile_preset): no padding,
# and 2 × 2 tiles cover 256² (4 × 4: 512²) where 128-px ones needed 3 × 3 (5 × 5).
DENOISE_TILE = 144
# ... and such a denoise is tiled once the image holds more than this many tiles' worth of
# pixels (about 204²; measured at 256²: 2 × 2 tiles side by side 2.6× faster than whole).
DENOISE_TILE_AREA = 2
# Full-resolution channel count from which a preset counts as heavy (``paper``: 128).
HEAVY_CHANNELS = 64
# "auto" tiles an image only when it holds more than this many CPU tiles' worth of pixels:
# below that one fit of the whole image fits in memory and costs less than overlapping tiles.
AUTO_TILE_AREA = 4
# At most this many tiles are fitted at once (``workers`` of ``tiled_steps``; the automatic
# count is torch's thread count, capped here: more threads than this only measured on 2 cores).
TILE_WORKERS = 8
# At most this many values go into percentile estimates over a lazy or huge image.
SAMPLE = 2**24
# Share of an overlap, at each end, where a tile's weight is 0 (see ``_ramp``).
MARGIN = 0.25


class TileSnapshot(Protocol):
    """What ``fit_tile`` yields (``restore.Snapshot`` in the tile's normalised ``(C, h, w)``)."""

    step: int
    total_steps: int
    loss: float
    best: np.ndarray | None
    average: np.ndarray
    best_step: int | None
    score: float | None
    scores: tuple[tuple[int, float], ...]
    stop_reason: str | None


@dataclass(frozen=True)
class TileProgress:
    """Progress of a tiled run: the fields of :class:`napari_dip.Snapshot`, for the mosaic.

    :func:`tiled_steps` yields these by default; :func:`napari_dip.restore_steps` has it make
    ``restore.TiledSnapshot`` instead, a ``Snapshot`` with the same four tile fields.

    ``estimate``, ``average`` and ``best`` are one array (not three, to spare memory): the
    finished tiles blended, plus the current tile's best estimate so far; where no tile has
    been restored yet it holds the input (a lazy input: once its tile has been read), so a
    viewer shows the image clearing tile by tile; for super-resolution, whose input is
    smaller, the low end of the input's range. ``step``, ``total_steps``,
    ``best_step`` and the steps in ``scores`` count steps over all tiles, so a progress bar or
    a loss plot runs on; ``total_steps`` is a ceiling that shrinks as tiles stop early.
    ``tiles_done`` of ``tiles_total`` tiles are finished and ``tiles_running`` are under way
    (more than one when ``tiled_steps`` fits tiles side by side); ``tile_step`` of
    ``tile_total_steps`` is the progress within the current tile, the one that reported
    last. ``loss``, ``score`` and ``best_step`` belong to it.
    """

    step: int
    total_steps: int
    loss: float
    estimate: np.ndarray
    average: np.ndarray
    elapsed: float
    stop_reason: str | None
    dtype: np.dtype
    best: np.ndarray | None = None
    best_step: int | None = None
    score: float | None = None
    scores: tuple[tuple[int, float], ...] = ()
    camera: object = None  # a Poisson model's camera parameters (_noise.NoiseParams)
    tiles_done: int = 0
    tiles_total: int = 1
    tiles_running: int = 0
    tile_step: int = 0
    tile_total_steps: int = 0
    expected_steps: int | None = None  # where the run should end (see ``tiled_steps``)

    @property
    def eta(self) -> float:
        """Seconds left at the pace so far, to ``expected_steps`` when known, else to
        ``total_steps`` (an upper bound with a stop rule)."""
        if not self.step:
            return math.nan
        end = self.total_steps if self.expected_steps is None else self.expected_steps
        return self.elapsed / self.step * max(0, min(end, self.total_steps) - self.step)

    def result(self) -> np.ndarray:
        """The mosaic cast to the input's dtype."""
        return to_dtype(self.average if self.best is None else self.best, self.dtype)


def tile_progress(snap: Any) -> str:
    """Where a tiled run is, for a progress line: ``tile 3/25``, or ``tiles 3–4/25`` while
    two are fitted at once."""
    total, done = snap.tiles_total, snap.tiles_done
    running = getattr(snap, "tiles_running", 0)
    if running > 1:
        return f"tiles {done + 1}–{min(done + running, total)}/{total}"
    return f"tile {min(done + 1, total)}/{total}"


def is_lazy(array: object) -> bool:
    """True for array-likes that read on indexing (dask, zarr, h5py): never load them whole."""
    return (
        not isinstance(array, np.ndarray)
        and hasattr(array, "shape")
        and hasattr(array, "dtype")
        and hasattr(array, "__getitem__")
    )


def default_tile(
    full_res_channels: int, device_type: str, factor: int = 1, denoise: bool = False
) -> tuple[int, int]:
    """The default tile side and overlap, in input pixels.

    The cost of a step grows with the network's output pixels times its full-resolution width,
    so light presets (``fast``: 16 channels) get 512-pixel tiles and heavy ones (``paper``: 128)
    256 on a CPU; a CUDA GPU has the memory for twice the side (and runs larger tiles more
    efficiently). For super-resolution the network's output is ``factor`` times the input tile,
    so the input tile shrinks by ``factor`` (at least 32 pixels). The overlap is 1/8 of the
    side (64 pixels for 512): wide enough for the blending ramp to hide the edge effects of
    the network's reflection padding, small enough to waste little work (8/7 the pixels per
    axis, plus rounding to whole tiles: 2048² in 512-pixel tiles is 5×5 tiles, 1.56× the
    pixels).

    Denoising with a light preset on a CPU (``denoise=True``, ``device_type="cpu"``) uses
    ``DENOISE_TILE`` (144-pixel) tiles instead, for speed: the steps a fit needs grow with
    the side of what it fits (*camera*, σ = 25, ``fast``, automatic stop: about 500 steps at
    128², 1100 at 256², 2200 at 512²), while a 128-pixel tile stops after 60–600, flat tiles
    first. The 512² *camera* in 25 tiles of 128 took 256 steps each on average, 5× less work
    than one 2260-step fit of the whole: 301 s against 1048 s, and 28.97 dB against 28.57
    (``benchmarks/speed.py --part auto --size 512 --tile auto,none``); fitted two at a time
    (``restore_steps``' ``tile_workers``) with a lighter network (``restore.tile_preset``),
    144-pixel tiles take 104 s and give 28.91 dB (``benchmarks/results/tile_padding.md``).
    144 pixels covers 256² in 2 × 2 tiles (*camera* 53 s, 28.32 dB, with the 4-scale network
    of before, against 135 s and 28.29 whole; *astronaut* 51 s, 28.01 against 126 s, 28.02)
    and 512² in 4 × 4. 96- and 272-pixel tiles were slower and no better
    (``benchmarks/tile_size.py``). Unmeasured elsewhere (inpainting's holes need context; a
    GPU runs small tiles inefficiently), so those keep the sides above.
    """
    if denoise and device_type == "cpu" and full_res_channels < HEAVY_CHANNELS:
        return DENOISE_TILE, DENOISE_TILE // 8
    side = HEAVY_TILE if full_res_channels >= HEAVY_CHANNELS else LIGHT_TILE
    if device_type == "cuda":
        side *= 2
    side = max(side // factor, 32)
    return side, side // 8


def untiled_limit(
    full_res_channels: int, factor: int = 1, device_type: str = "cpu", denoise: bool = False
) -> int:
    """The most input pixels ``tile="auto"`` restores whole: ``AUTO_TILE_AREA`` CPU tiles,
    1024² for light presets (about 2 GB on a CPU for ``fast``, measured), 512² for heavy ones,
    whatever the device (a GPU may have less memory than the host); ``DENOISE_TILE_AREA``
    denoising tiles (about 204²) when a light preset denoises on a CPU (there tiles are
    faster, not only smaller)."""
    cpu = device_type == "cpu"
    side, _ = default_tile(full_res_channels, "cpu", factor, denoise and cpu)
    small = denoise and cpu and full_res_channels < HEAVY_CHANNELS
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
    ``after`` pixels with the neighbours.

    The outer quarter of an overlap (``MARGIN``) gets weight 0: there the network saw the
    least context and reflection padding shows, so the neighbour alone covers it. The rise
    (``sin²``) over the middle half of an overlap and the neighbour's fall (``cos²``) over the
    same pixels sum to 1, so an image of one constant restores to that constant."""
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
        """Blending weights ``(h·factor, w·factor)`` float32 of a tile: ramps (see ``_ramp``)
        only on the sides that overlap a neighbour, over the width of that overlap."""
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

    Raises ``ValueError`` for a tile under 16 pixels or an overlap that is negative or not less
    than half the tile (the blending ramps of both sides must fit in a tile).
    """
    if isinstance(tile, bool) or not isinstance(tile, int | np.integer) or tile < 16:
        raise ValueError(f"tile must be an integer >= 16 (pixels), got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int | np.integer):
        raise ValueError(f"tile_overlap must be an integer, got {overlap!r}")
    if not 0 <= overlap < tile / 2:
        raise ValueError(f"tile_overlap must be >= 0 and < tile/2 = {tile / 2:g}, got {overlap}")
    h, w = shape
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    return TilePlan((h, w), int(tile), int(overlap), int(factor), tuple(ys), tuple(xs))


def _spatial_axes(ndim: int, channel_axis: int | None) -> tuple[int, int]:
    if channel_axis is None:
        return 0, 1
    c = channel_axis % ndim
    rest = [a for a in range(ndim) if a != c]
    return rest[0], rest[1]


def _index(ndim: int, channel_axis: int | None, rows: slice, cols: slice) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    ya, xa = _spatial_axes(ndim, channel_axis)
    index[ya], index[xa] = rows, cols
    return tuple(index)


def _bands(source: Any, axis: int, height: int) -> list[slice]:
    """Row bands for a chunk-wise pass: a dask array's own chunks along ``axis`` (each chunk
    is computed once), else bands of ``height`` rows."""
    n = source.shape[axis]
    chunks = getattr(source, "chunks", None)
    if isinstance(chunks, tuple) and chunks and isinstance(chunks[axis], tuple):
        edges = np.cumsum((0, *chunks[axis]))  # dask: block sizes per axis
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
    return [slice(a, min(a + height, n)) for a in range(0, n, height)]


def global_range(
    source: Any,
    channel_axis: int | None,
    known: np.ndarray | None = None,
    normalize: tuple[float, float] | None = None,
    band: int = 512,
) -> tuple[float, float]:
    """The intensity range of ``source``'s known pixels, read band by band.

    One mapping for the whole image, so every tile is normalised the same way (per-tile ranges
    would make tiles differ in brightness). A lazy source (dask, zarr) is read one row band at
    a time — a dask array's own chunk rows, so each chunk is computed once — so no more than a
    band is in memory and no computation covers the whole array; a numpy source is one band.
    The min and max are exact (the extremes of every band); percentiles (``normalize``) come
    from an evenly strided sample of at most ``SAMPLE`` known values, exact below that. The
    range itself is :func:`~napari_dip._arrays.intensity_range`'s, as for untiled images.

    Raises ``ValueError`` when nothing is known, known values are not finite or the image is
    constant; ``TypeError`` for a non-numeric dtype.
    """
    dtype = np.dtype(source.dtype)
    if dtype.kind not in "iuf":  # not bool, complex or objects
        raise TypeError(f"image has dtype {dtype}; expected an integer or float array")
    ndim = len(source.shape)
    ya, _ = _spatial_axes(ndim, channel_axis)
    bands = [slice(None)] if isinstance(source, np.ndarray) else _bands(source, ya, band)
    stride = max(1, math.prod(source.shape) // SAMPLE)
    extremes: list[np.ndarray] = []
    samples: list[np.ndarray] = []
    for rows in bands:
        chw = np.asarray(source[_index(ndim, channel_axis, rows, slice(None))])
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


def tiled_steps(
    source: Any,
    plan: TilePlan,
    fit_tile: Callable[..., Iterator[TileSnapshot]],
    *,
    channel_axis: int | None = None,
    known: np.ndarray | None = None,
    normalize: tuple[float, float] | None = None,
    value_range: tuple[float, float] | None = None,
    should_stop: Callable[[], bool] | None = None,
    snapshot_type: Callable[..., Any] = TileProgress,
    workers: int = 1,
) -> Iterator[Any]:
    """Restore ``source`` tile by tile with ``fit_tile``, yielding mosaics of the progress.

    Parameters
    ----------
    source : array-like
        ``(H, W)``, or multichannel with ``channel_axis``; numpy or lazy (dask, zarr): each
        tile is read with ``source[region]``, the array is never loaded whole.
    plan : TilePlan
        From :func:`plan_tiles` over the spatial shape.
    fit_tile : callable
        ``fit_tile(unit, known, (lo, hi), should_stop)`` restores one tile given as
        ``(C, h, w)`` float32 in [0, 1] (the whole image's mapping of ``lo..hi``) and its
        ``(C or 1, h, w)`` known-pixel mask (or None), and yields snapshots whose ``best`` is
        ``(C, h·f, w·f)`` in [0, 1]; the last one has ``stop_reason`` set. It should check
        ``should_stop()`` every step and end with ``stop_reason="stopped on request"`` when
        it turns true. With ``workers > 1`` the generator it returns is consumed on another
        thread (``fit_tile`` itself is called on this one).
    known : ndarray, optional
        Inpainting: ``(C or 1, H, W)`` bool, True where the pixel is known. Every tile must
        hold some known pixels (checked first; a larger tile helps).
    normalize : (float, float), optional
        Percentiles mapped to 0 and 1 (see :func:`global_range`); default min and max.
    value_range : (float, float), optional
        The mapping, when the caller has already computed it with :func:`global_range`
        (otherwise that pass runs here, in the generator: on a worker thread, not the GUI's).
    should_stop : callable, optional
        Checked before each tile starts and handed to ``fit_tile``; when it turns true the
        run ends with the finished tiles and the running tiles' best so far.
    snapshot_type : callable
        Makes each snapshot from :class:`TileProgress`'s fields as keywords (default: that).
    workers : int
        How many tiles are fitted at once, each on its own thread (in plan order; the
        results are blended in plan order too, so the mosaic does not depend on which tile
        finishes first). On a CPU, small tiles use cores better side by side than one
        after the other with the cores splitting each convolution (``restore_steps``
        chooses; see ``TILE_WORKERS``). Snapshots then describe the tile that reported last.

    Memory: the output mosaic and the blending weights, float32, ``factor²`` times the input's
    pixels (times channels for the mosaic), plus, per worker, one tile and its network.
    """
    start = time.perf_counter()
    ndim = len(source.shape)
    check_known(plan, known)
    if value_range is None:
        value_range = global_range(source, channel_axis, known, normalize, band=plan.tile)
    lo, hi = value_range
    f = plan.factor
    out_h, out_w = plan.shape[0] * f, plan.shape[1] * f
    channels = 1 if channel_axis is None else source.shape[channel_axis % ndim]
    mosaic = np.zeros((channels, out_h, out_w), np.float32)  # blended unit values
    weight = np.zeros((out_h, out_w), np.float32)
    shown_whole = f == 1 and isinstance(source, np.ndarray)
    if shown_whole:  # the input, shown until tiles cover it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tiles warn, once per kind
            mosaic[:] = prepare_image(source, channel_axis, known, value_range=(lo, hi))[0]
    layout = Layout(np.dtype(source.dtype), lo, hi, _layout_axis(ndim, channel_axis), ndim)
    regions = list(plan.tiles())
    windows: dict[int, np.ndarray] = {}
    total = len(regions)
    started = 0  # tiles handed to fit_tile
    running: dict[int, TileSnapshot] = {}  # started and not finished: their latest snapshot
    finished: dict[int, TileSnapshot] = {}  # finished, waiting for their turn to be blended
    blended = 0  # tiles 0 .. blended - 1 are in the mosaic
    done = 0  # tiles whose fit ended by itself
    steps_done = 0  # steps of the finished tiles
    per_tile = 0  # the latest tile's step ceiling
    reasons: dict[int, str] = {}
    warned: set[type[Warning]] = set()

    def shown(index: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
        """A tile's output region, blending window and best estimate."""
        snap = finished.get(index) or running[index]
        assert snap.best is not None
        return plan.output(regions[index]), windows[index], snap.best

    def snapshot(report: TileSnapshot | None, reason: str | None) -> Any:
        """The mosaic so far with the running (and finished, unblended) tiles' best estimates
        over it; ``report``: the snapshot of the tile that reported last."""
        values = from_unit(mosaic, layout)  # a fresh float32 copy in the caller's range
        over = sorted(set(running) | set(finished))
        if over and reason is None:
            box, part = _overlay(mosaic, weight, [shown(i) for i in over])
            values[_index(ndim, channel_axis, *box)] = from_unit(part, layout)
        tile_step = 0 if report is None else report.step
        step = steps_done + sum(s.step for s in running.values())
        offset = step - tile_step  # the report's own step 0 on the run's step axis
        unstarted = total - started
        waiting = started - len(running) - len(finished) - blended  # started, no report yet
        left = sum(per_tile - s.step for s in running.values()) + (unstarted + waiting) * per_tile
        # Where the run should end: each running tile where its rule expects, every tile to
        # come as long as the finished ones took on average (the rule's guess before any has)
        hint = getattr(report, "expected_steps", None)
        typical = steps_done / done if done else hint
        expected = step if reason is not None else None
        if typical is not None and reason is None:
            this = 0.0
            for s in running.values():  # what each running tile takes in all
                own = getattr(s, "expected_steps", None)
                this += max(own if own is not None else typical, s.step) - s.step
            expected = step + round(this + (unstarted + waiting) * typical)
        best_step = None if report is None else report.best_step
        return snapshot_type(
            step=step,
            total_steps=max(step + left, step, 1),
            loss=math.nan if report is None else report.loss,
            estimate=values,
            average=values,
            best=values,
            best_step=None if best_step is None else offset + best_step,
            score=None if report is None else report.score,
            scores=() if report is None else tuple((offset + s, v) for s, v in report.scores),
            elapsed=time.perf_counter() - start,
            stop_reason=reason,
            dtype=layout.dtype,
            camera=getattr(report, "camera", None),  # a Poisson model's camera parameters
            tiles_done=done,
            tiles_total=total,
            tiles_running=len(running),
            tile_step=tile_step,
            tile_total_steps=per_tile,
            expected_steps=None if expected is None else min(expected, step + left),
        )

    def begin(index: int, halt: Callable[[], bool]) -> Iterator[TileSnapshot]:
        """Read tile ``index`` and start its fit (on this thread: reads stay in order)."""
        nonlocal started
        rows, cols = regions[index]
        tile = np.asarray(source[_index(ndim, channel_axis, rows, cols)])
        part = None if known is None else known[:, rows, cols]
        with warnings.catch_warnings(record=True) as caught:  # e.g. saturation, per tile
            warnings.simplefilter("always")
            unit, _ = prepare_image(tile, channel_axis, part, value_range=(lo, hi))
        for warning in caught:  # once per kind and run, not once per tile
            if warning.category not in warned:
                warned.add(warning.category)
                warnings.warn(f"{warning.message} (tile {index + 1})", warning.category, 3)
        del tile
        if f == 1 and not shown_whole:  # a lazy input: shown from now on where no tile ran
            mosaic[:, rows, cols] = np.where(weight[rows, cols] > 0, mosaic[:, rows, cols], unit)
        windows[index] = plan.window(regions[index])
        started += 1
        return fit_tile(unit, part, (lo, hi), halt)

    stop_seen = threading.Event()  # once asked to stop, no tile starts any more

    def halt() -> bool:
        if not stop_seen.is_set() and should_stop is not None and should_stop():
            stop_seen.set()
        return stop_seen.is_set()

    source_of = _in_turn if workers <= 1 else functools.partial(_side_by_side, workers=workers)
    events = source_of(begin, total, halt)
    last: TileSnapshot | None = None
    try:
        for index, last in events:
            per_tile = last.total_steps
            if last.stop_reason is None:
                running[index] = last
                yield snapshot(last, None)
                continue
            running.pop(index, None)
            finished[index] = last
            steps_done += last.step
            if last.stop_reason != "stopped on request":
                done += 1
                reasons[index] = last.stop_reason
            while blended in finished:  # in plan order: the same mosaic whichever ends first
                rows_o, cols_o = plan.output(regions[blended])
                win = windows.pop(blended)
                best = finished.pop(blended).best
                mosaic[:, rows_o, cols_o] = _blend(
                    mosaic[:, rows_o, cols_o], weight[rows_o, cols_o], best, win
                )
                weight[rows_o, cols_o] += win
                blended += 1
            if done < total and last.stop_reason != "stopped on request":
                yield snapshot(last, None)  # the finished tile, with its last scores
    finally:
        events.close()  # stops and joins running tiles now, not when garbage collected
    assert not running and not finished  # every started tile ended and went in
    if done == total:
        reason = f"all {total} tiles done; last tile: {reasons[total - 1]}"
    else:
        reason = "stopped on request"
    yield snapshot(last, reason)


def _in_turn(
    begin: Callable[[int, Callable[[], bool]], Iterator[TileSnapshot]],
    total: int,
    halt: Callable[[], bool],
) -> Iterator[tuple[int, TileSnapshot]]:
    """``(tile, snapshot)`` of one tile after the other, on this thread, until ``halt()``."""
    for index in range(total):
        if halt():
            return
        run = begin(index, halt)
        try:
            for snap in run:
                yield index, snap
        finally:
            run.close()  # frees the tile's network before the next one is built


def _side_by_side(
    begin: Callable[[int, Callable[[], bool]], Iterator[TileSnapshot]],
    total: int,
    should_stop: Callable[[], bool],
    workers: int,
) -> Iterator[tuple[int, TileSnapshot]]:
    """``(tile, snapshot)`` of up to ``workers`` tiles fitted at once, one thread each.

    Tiles start in plan order as threads free up. A worker's exception is raised here (the
    other tiles are stopped first); closing this generator stops the running tiles within a
    step and waits for their threads. The queue is bounded, so fits wait for a consumer that
    does not read instead of piling up snapshots.
    """
    cancel = threading.Event()

    def halt() -> bool:
        return cancel.is_set() or should_stop()

    events: queue.Queue = queue.Queue(maxsize=4 * workers)

    def work(index: int, run: Iterator[TileSnapshot]) -> None:
        error: BaseException | None = None
        try:
            for snap in run:
                events.put((index, snap, None))
        except BaseException as exc:  # handed to the consumer's thread
            error = exc
        finally:
            run.close()
            events.put((index, None, error))  # this thread is done

    threads: dict[int, threading.Thread] = {}
    following = 0
    try:
        while True:
            while len(threads) < workers and following < total and not halt():
                run = begin(following, halt)
                thread = threading.Thread(
                    target=work, args=(following, run), name=f"napari-dip tile {following + 1}"
                )
                threads[following] = thread
                thread.start()
                following += 1
            if not threads:
                return
            index, snap, error = events.get()
            if snap is not None:
                yield index, snap
                continue
            threads.pop(index).join()
            if error is not None:
                raise error
    finally:
        cancel.set()
        while threads:  # let the running fits end (within a step) and their threads finish
            index, snap, _ = events.get()
            if snap is None:
                threads.pop(index).join()


def _overlay(
    mosaic: np.ndarray,
    weight: np.ndarray,
    tiles: list[tuple[tuple[slice, slice], np.ndarray, np.ndarray]],
) -> tuple[tuple[slice, slice], np.ndarray]:
    """``tiles`` (output region, window, estimate) blended over a copy of the part of
    ``mosaic`` they cover, in order: that part's bounding box and its values."""
    r0 = min(rows.start for (rows, _), _, _ in tiles)
    r1 = max(rows.stop for (rows, _), _, _ in tiles)
    c0 = min(cols.start for (_, cols), _, _ in tiles)
    c1 = max(cols.stop for (_, cols), _, _ in tiles)
    part = mosaic[:, r0:r1, c0:c1].copy()
    under = weight[r0:r1, c0:c1].copy()
    for (rows, cols), win, best in tiles:
        rr, cc = slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0)
        part[:, rr, cc] = _blend(part[:, rr, cc], under[rr, cc], best, win)
        under[rr, cc] += win
    return (slice(r0, r1), slice(c0, c1)), part


def _blend(
    mosaic: np.ndarray, weight: np.ndarray, tile: np.ndarray | None, win: np.ndarray
) -> np.ndarray:
    """The weighted mean of what a region holds (``mosaic`` with weights ``weight``) and a
    new ``tile`` with weights ``win``; where both weigh nothing, what the region holds."""
    assert tile is not None
    total = weight + win
    mixed = mosaic * weight + tile * win
    return np.divide(mixed, total, out=np.array(mosaic, copy=True), where=total > 0)


def _layout_axis(ndim: int, channel_axis: int | None) -> int | None:
    return None if channel_axis is None else channel_axis % ndim
