"""Assembly: pieces back into parts (tiles blended without seams, in plan order) and parts back
into the caller's axes, intensity range and dtype. numpy only.

Everything a snapshot keeps of it is frozen: :class:`PartView` holds read-only copies or
arrays nobody writes again, so a snapshot stays what it was when it was made, whichever thread
looks at it and however far the run has gone on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._arrays import Layout, from_unit, prepare_image
from .._axes import StackLayout
from .tiles import TilePlan, index

__all__ = [
    "UNCERTAINTY_FACTORS",
    "Members",
    "Mosaic",
    "PartView",
    "StackView",
    "frozen",
    "placeholder",
    "spread",
]


def frozen(array: np.ndarray) -> np.ndarray:
    """``array`` made read-only (no copy): a snapshot's arrays are never written again."""
    array.flags.writeable = False
    return array


def _blend(mosaic: np.ndarray, weight: np.ndarray, tile: np.ndarray, win: np.ndarray) -> np.ndarray:
    """The weighted mean of what a region holds (``mosaic`` with weights ``weight``) and a
    new ``tile`` with weights ``win``; where both weigh nothing, what the region holds."""
    total = weight + win
    mixed = mosaic * weight + tile * win
    return np.divide(mixed, total, out=np.array(mosaic, copy=True), where=total > 0)


Overlay = tuple[tuple[slice, slice], np.ndarray, np.ndarray]  # output region, window, unit


def _overlay(
    mosaic: np.ndarray, weight: np.ndarray, tiles: tuple[Overlay, ...]
) -> tuple[tuple[slice, slice], np.ndarray]:
    """``tiles`` blended over a copy of the part of ``mosaic`` they cover, in order: that
    part's bounding box and its values."""
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


class Mosaic:
    """The tiles of one part, blended in plan order (so the result does not depend on which
    tile finishes first). Until tiles cover it the mosaic shows the input (a lazy input: once
    its tile has been read; super-resolution: the low end of the range)."""

    def __init__(self, tiles: TilePlan, channels: int, shown: np.ndarray | None) -> None:
        f = tiles.factor
        self.tiles = tiles
        self.regions = list(tiles.tiles())
        h, w = tiles.shape[0] * f, tiles.shape[1] * f
        self.values = np.zeros((channels, h, w), np.float32)  # blended unit values
        self.weight = np.zeros((h, w), np.float32)
        if shown is not None:
            self.values[:] = shown
        self.shows_input = shown is not None
        self.finished: dict[int, np.ndarray | None] = {}  # finished, waiting for their turn
        self._windows: dict[int, np.ndarray] = {}
        self.blended = 0  # tiles 0 .. blended - 1 are in
        self._frozen: tuple[np.ndarray, np.ndarray] | None = None

    def show(self, tile: int, unit: np.ndarray) -> None:
        """A lazy input's tile, read now: shown where no tile has been blended yet."""
        if self.tiles.factor != 1 or self.shows_input:
            return
        rows, cols = self.regions[tile]
        here = self.values[:, rows, cols]
        self.values[:, rows, cols] = np.where(self.weight[rows, cols] > 0, here, unit)
        self._frozen = None

    def overlay(self, tile: int, best: np.ndarray) -> Overlay:
        """A tile's output region, blending window and ``best`` estimate."""
        if tile not in self._windows:
            self._windows[tile] = self.tiles.window(self.regions[tile])
        return self.tiles.output(self.regions[tile]), self._windows[tile], best

    def overlays(self, running: dict[int, np.ndarray]) -> tuple[Overlay, ...]:
        """The running tiles' (``{tile: best}``) and the finished, not yet blended ones' best
        estimates, in plan order, to show over the mosaic."""
        over = {**running, **{k: v for k, v in self.finished.items() if v is not None}}
        return tuple(self.overlay(k, over[k]) for k in sorted(over))

    def add(self, tile: int, best: np.ndarray | None) -> None:
        """A finished tile's best estimate (unit values; None: the tile failed and keeps what
        the mosaic shows there): blended once all tiles before it are."""
        self.finished[tile] = best
        while self.blended in self.finished:
            unit = self.finished.pop(self.blended)
            if unit is not None:
                (rows, cols), win, _ = self.overlay(self.blended, unit)
                self.values[:, rows, cols] = _blend(
                    self.values[:, rows, cols], self.weight[rows, cols], unit, win
                )
                self.weight[rows, cols] += win
            self.blended += 1
            self._frozen = None

    def freeze(self) -> tuple[np.ndarray, np.ndarray]:
        """Read-only copies of the values and weights, made once per change (for snapshots)."""
        if self._frozen is None:
            self._frozen = frozen(self.values.copy()), frozen(self.weight.copy())
        return self._frozen


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # a piece's estimate, average and best


class Members:
    """The ensemble members of each tile (or part fitted whole), gathered until all have
    ended: their mean is the tile's estimate, the variance of their best its uncertainty."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.groups: dict[tuple[int, int | None], list[Arrays | None]] = {}

    def add(
        self, key: tuple[int, int | None], arrays: Arrays | None
    ) -> tuple[Arrays | None, np.ndarray | None] | None:
        """One member's arrays (None: it failed). None while members are missing; then the
        mean arrays (None if every member failed) and the variance (None for one member)."""
        if self.count == 1:
            return arrays, None
        group = self.groups.setdefault(key, [])
        group.append(arrays)
        if len(group) < self.count:
            return None
        done = [g for g in self.groups.pop(key) if g is not None]
        if not done:
            return None, None
        mean = tuple(np.mean([g[i] for g in done], axis=0, dtype=np.float64) for i in range(3))
        best = np.stack([g[2] for g in done])
        variance = best.var(axis=0, ddof=1) if len(done) > 1 else np.zeros_like(best[0])
        as32 = tuple(m.astype(np.float32) for m in mean)
        return as32, variance.astype(np.float32)  # type: ignore[return-value]

    def running(self, arrays: list[np.ndarray]) -> np.ndarray:
        """A preview of the members under way: their mean."""
        return arrays[0] if len(arrays) == 1 else np.mean(arrays, axis=0).astype(np.float32)


# σ̂ = factor × the members' standard deviation, per task: the members share the network's
# bias, so their raw spread covers too little of the true error (±2 spread: 39–71 %). Each
# factor is the median, over the tuning images camera, coins and moon (128², 4 members), of
# the factor that makes ±2σ̂ cover 95 % of the true errors (benchmarks/results/
# uncertainty_tuning_128_denoise_deconvolve_inpaint_super_resolve.json); the held-out check is
# in the benchmark docs.
UNCERTAINTY_FACTORS = {"denoise": 4.17, "deconvolve": 3.65, "inpaint": 3.69, "super_resolve": 3.51}


def spread(
    variance: np.ndarray, layout: Layout, volume: StackLayout | None, factor: float = 1.0
) -> np.ndarray:
    """A variance in unit² as a standard deviation (times ``factor``) in the caller's axes and
    units."""
    scale = Layout(layout.dtype, 0.0, layout.hi - layout.lo, layout.channel_axis, layout.ndim)
    out = from_unit(factor * np.sqrt(np.maximum(variance, 0)), scale)
    return out if volume is None else volume.from_engine(out)


@dataclass(frozen=True, eq=False)
class PartView:
    """One part's arrays as a snapshot saw them, in the caller's axes and range (float32).

    Either a piece's own output (``estimate``/``average``/``best`` unit arrays of a part fitted
    whole) or a mosaic (``values``/``weight``) with the running tiles' estimates over it.
    ``stack`` maps a volume back from the engine's ``(C, D, H, W)``.
    """

    layout: Layout
    estimate: np.ndarray | None = None
    average: np.ndarray | None = None
    best: np.ndarray | None = None
    values: np.ndarray | None = None
    weight: np.ndarray | None = None
    overlays: tuple[Overlay, ...] = ()
    volume: StackLayout | None = None

    def _out(self, unit: np.ndarray) -> np.ndarray:
        out = from_unit(unit, self.layout)
        return out if self.volume is None else self.volume.from_engine(out)

    def get(self, which: str) -> np.ndarray:
        """``"estimate"``, ``"average"`` or ``"best"`` (a mosaic has one array for all)."""
        if self.values is None:
            return self._out(getattr(self, which))
        out = from_unit(self.values, self.layout)
        if self.overlays:
            assert self.weight is not None
            box, part = _overlay(self.values, self.weight, self.overlays)
            out[index(self.layout.ndim, self.layout.channel_axis, *box)] = from_unit(
                part, self.layout
            )
        return out


def placeholder(piece: np.ndarray, stack: StackLayout, factor: int) -> np.ndarray:
    """What a part of a stack shows until it is restored: the input, pixel-repeated when
    upscaling (float32, NaN as 0)."""
    values = np.nan_to_num(np.asarray(piece).astype(np.float32))
    for axis, letter in enumerate(stack.core_letters):
        if letter in "YX" and factor > 1:
            values = np.repeat(values, factor, axis=axis)
    return values


@dataclass(frozen=True, eq=False)
class StackView:
    """A stack as a snapshot saw it: the finished parts' results (read-only arrays), the
    running parts' views, and the input (never written) for the parts not restored yet."""

    stack: StackLayout
    factor: int
    source: Any
    finished: tuple[np.ndarray | None, ...]
    running: tuple[tuple[int, PartView], ...] = ()
    spreads: tuple[np.ndarray | None, ...] = ()

    def compose_spread(self) -> np.ndarray:
        """The finished parts' standard deviations (0 where none is known yet)."""
        out = np.zeros(self.stack.out_shape(self.factor), np.float32)
        for k, where in enumerate(self.stack.indices()):
            if k < len(self.spreads) and self.spreads[k] is not None:
                out[where] = self.spreads[k]
        return out

    def compose(self) -> np.ndarray:
        out = np.empty(self.stack.out_shape(self.factor), np.float32)
        running = dict(self.running)
        for k, where in enumerate(self.stack.indices()):
            done = self.finished[k]
            if done is not None:
                out[where] = done
            elif k in running:
                out[where] = running[k].get("best")
            else:
                out[where] = placeholder(self.source[where], self.stack, self.factor)
        return out


def shown_input(source: Any, channel_axis: int | None, known: Any, lo: float, hi: float) -> Any:
    """The unit values a tiled numpy part shows before tiles cover it (None for a lazy part or
    super-resolution: those fill in as tiles are read)."""
    if not isinstance(source, np.ndarray):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiles warn, once per kind
        return prepare_image(source, channel_axis, known, value_range=(lo, hi))[0]
