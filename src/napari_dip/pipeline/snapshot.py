"""The one snapshot type every face receives: progress of a run, in the caller's terms.

A :class:`Snapshot` is immutable and owns what it shows: its arrays are computed on demand from
read-only views (:mod:`.assembly`), never from a buffer the run is still writing, so a display
on another thread may keep it as long as it likes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from .._arrays import to_dtype
from .._noise import NoiseParams
from .assembly import PartView, StackView

__all__ = ["RANGE_STDS", "Snapshot", "estimate_text", "progress_text", "seconds_left"]

RANGE_STDS = 2.0  # the estimated PSNR's range: the error estimate ± this many of its std


def seconds_left(
    elapsed: float, step: int, total_steps: int, expected_steps: int | None = None
) -> float:
    """Time left at the pace so far: to ``expected_steps`` (where the stop rules expect the
    run to end, capped at ``total_steps``) when known, else to ``total_steps``; NaN before the
    first step."""
    if not step:
        return math.nan
    end = total_steps if expected_steps is None else min(expected_steps, total_steps)
    return elapsed / step * max(0, end - step)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Progress of a restoration, in the caller's axes and intensity range.

    Steps count over every piece of the run (tiles, slices): ``step`` so far of at most
    ``total_steps`` (the ceiling, fixed for the whole run), ``expected_steps`` where the stop
    rules expect it to end (``eta`` counts to it). ``loss``, ``score``, ``best_step`` and
    ``scores`` belong to the piece that reported (``best_step`` and the score steps placed on
    the run's step axis). ``stop_reason`` is set on the run's last snapshot only.

    Where the run is: ``part`` of ``parts`` (slices, frames, volumes; at ``index`` in the
    stack) and ``tile`` of ``tiles`` per part reported; ``pieces_done`` of ``pieces`` have
    ended and ``pieces_running`` run now; that piece is at ``piece_step`` of
    ``piece_total_steps`` (``piece_stop_reason`` set when it just ended). ``reasons`` says
    why each finished part stopped, ``failures`` which pieces failed and why.

    ``progress`` (0 to 1) is the share of the run done, for a bar with a fixed end.
    ``estimated_psnr`` is what SURE or the held-out pixels of a self-validating denoising run
    predict (dB against the dtype's range for integers, the image's range for floats), without
    ground truth; None otherwise, and for pieces clipped at their range (see
    ``fitting.CLIPPED_LIMIT``). ``estimated_psnr_range`` is where the true PSNR should lie
    given the estimate's own sampling error (± 2 standard deviations of the error estimate,
    :mod:`napari_dip.engine.stopping.spread`; ``inf`` above where the error could be 0): wide
    on small or clean images, and blind to a noise level read wrongly from the image (give
    ``sigma``). ``fusion_weight`` is the network's share in a result fused
    with a classical estimate (option ``fuse``: a denoiser's, or the biharmonic fill when
    inpainting), averaged over the pieces fused so far.

    ``estimate``, ``average`` and ``best`` are the current part — the image, or the slice,
    frame or volume that reported, at ``index`` in the stack — as float32: the network's
    output, its running average and the estimate the stop rule chose (a tiled part: one
    mosaic for all three, with the running tiles' best over the finished ones).
    :meth:`result` is the whole result so far in the input's dtype.
    """

    step: int
    total_steps: int
    loss: float
    elapsed: float
    stop_reason: str | None
    dtype: np.dtype
    best_step: int | None = None
    score: float | None = None
    scores: tuple[tuple[int, float], ...] = ()
    expected_steps: int | None = None
    camera: NoiseParams | None = None
    noise: str = "gaussian"
    work: int = 0
    job: int = 0
    part: int = 0
    parts: int = 1
    index: tuple | None = None
    tile: int | None = None
    tiles: int = 1
    piece_step: int = 0
    piece_total_steps: int = 0
    piece_stop_reason: str | None = None
    piece_elapsed: float = 0.0
    pieces: int = 1
    pieces_done: int = 0
    pieces_running: int = 0
    reasons: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    estimated_psnr: float | None = None
    estimated_psnr_range: tuple[float, float] | None = None  # (low, high) dB, see estimate_text
    fusion_weight: float | None = None  # fuse: the network's mean share over the fused pieces
    notes: tuple[str, ...] = ()  # what the run did on its own, e.g. retried in smaller tiles
    view: PartView | None = field(default=None, repr=False)
    spread: np.ndarray | None = field(default=None, repr=False)
    stack: StackView | None = field(default=None, repr=False)

    @property
    def progress(self) -> float:
        """How much of the run is done, 0 to 1, never going back: an ended piece counts its
        whole step ceiling (an automatic stop ends it early), a running one its steps."""
        return min(1.0, self.work / max(self.total_steps, 1))

    @property
    def eta(self) -> float:
        """Seconds left at the pace so far (see :func:`seconds_left`)."""
        return seconds_left(self.elapsed, self.step, self.total_steps, self.expected_steps)

    def _part(self, which: str) -> np.ndarray:
        if self.view is None:
            raise ValueError("this snapshot carries no images (the run keeps no previews)")
        return self.view.get(which)

    @functools.cached_property
    def estimate(self) -> np.ndarray:
        return self._part("estimate")

    @functools.cached_property
    def average(self) -> np.ndarray:
        return self._part("average")

    @functools.cached_property
    def best(self) -> np.ndarray:
        return self._part("best")

    def result(self) -> np.ndarray:
        """The whole result so far in the input's dtype: the chosen estimate of every part
        restored, the running parts' best so far, the input for the rest."""
        if self.stack is None:
            return self.piece_result()
        return to_dtype(self.stack.compose(), self.dtype)

    def uncertainty(self) -> np.ndarray | None:
        """The result's per-pixel standard deviation σ̂ (float32, the input's units): the
        spread of the ensemble members of every part finished so far (0 elsewhere), times
        the task's calibration factor (``assembly.UNCERTAINTY_FACTORS``); None without an
        ensemble."""
        if self.stack is not None:
            if not any(s is not None for s in self.stack.spreads):
                return None
            return self.stack.compose_spread()
        return None if self.spread is None else self.spread.copy()

    def piece_result(self) -> np.ndarray:
        """The current part's chosen estimate in the input's dtype (a plain image: all of it)."""
        return to_dtype(self.best, self.dtype)


def _span(done: int, running: int, total: int, noun: str) -> str:
    if running > 1:
        return f"{noun}s {done + 1}–{min(done + running, total)}/{total}"
    return f"{noun} {min(done + 1, total)}/{total}"


def progress_text(snap: Snapshot, noun: str = "slice") -> str:
    """Where a run is, in a few stable words: ``slice 2/8 · tile 3/4 · step 420``."""
    words = []
    if snap.parts > 1:
        words.append(f"{noun} {snap.part + 1}/{snap.parts}")
    if snap.tiles > 1:
        if snap.parts > 1:
            words.append(f"tile {(snap.tile or 0) + 1}/{snap.tiles}")
        else:
            words.append(_span(snap.pieces_done, snap.pieces_running, snap.tiles, "tile"))
    words.append(f"step {snap.step}")
    return " · ".join(words)


def estimate_text(snap: Snapshot) -> str:
    """``≈ 28.4 dB est. (27.9–29.0)`` when the run estimates its PSNR (the range: see
    ``estimated_psnr_range``; ``≥ 27.9`` when unbounded above), else ``""``."""
    value = snap.estimated_psnr
    if value is None or not math.isfinite(value):
        return ""
    text = f"≈ {value:.1f} dB est."
    if snap.estimated_psnr_range is not None:
        low, high = snap.estimated_psnr_range
        text += f" ({low:.1f}–{high:.1f})" if math.isfinite(high) else f" (≥ {low:.1f})"
    return text
