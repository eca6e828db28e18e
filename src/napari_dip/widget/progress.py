"""What the progress bar says: stable words over tiles and slices, the time left, the end.

Pure text from a :class:`~napari_dip.pipeline.snapshot.Snapshot` (no Qt), e.g.
``tile 3/4 · step 420 · about 25 s left`` during a run and
``done at step 1130 · result from step 1100 · 2 min 05 s`` after it; a run whose stop rule
estimates its PSNR without ground truth (``sure``, ``validation``) adds ``≈ 28.4 dB est.``
and the range its sampling error allows, ``(27.9–29.0)``, once it is known. The bar's value
is ``snapshot.progress`` on a fixed scale of :data:`BAR_MAX`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..pipeline.snapshot import estimate_text, progress_text

if TYPE_CHECKING:
    from ..pipeline.snapshot import Snapshot

__all__ = [
    "BAR_MAX",
    "STOPPED",
    "bar_value",
    "duration",
    "final_text",
    "noun",
    "psnr_text",
    "running_text",
]

BAR_MAX = 1000  # the bar's fixed maximum: snapshot.progress × BAR_MAX
STOPPED = "stopped on request"


def bar_value(snap: Snapshot) -> int:
    return round(snap.progress * BAR_MAX)


def duration(seconds: float) -> str:
    """``25 s``, ``3 min 05 s``, ``1 h 02 min``; ``?`` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def noun(axes: str | None, mode: str | None) -> str:
    """What a stack's parts are called: volumes, frames (a time-lapse) or slices."""
    if mode == "volume":
        return "volume"
    if axes is not None and "T" in axes and "Z" not in axes:
        return "frame"
    return "slice"


def psnr_text(snap: Snapshot) -> str:
    """`` · ≈ 28.4 dB est. (27.9–29.0)`` when the run estimates its PSNR, else nothing."""
    text = estimate_text(snap)
    return f" · {text}" if text else ""


def running_text(snap: Snapshot, part_noun: str = "slice") -> str:
    """``slice 2/8 · tile 3/4 · step 420 · about 25 s left`` (no time before it is known),
    and the estimated PSNR once known."""
    text = progress_text(snap, part_noun)
    if math.isfinite(snap.eta) and snap.step:
        text += f" · about {duration(snap.eta)} left"
    return text + psnr_text(snap)


def final_text(snap: Snapshot, part_noun: str = "slice") -> str:
    """Short enough for a narrow dock; the full stop reason goes in the bar's tooltip."""
    ended = "stopped" if snap.stop_reason == STOPPED else "done"
    if snap.failures:
        ended += f" ({len(snap.failures)} failed)"
    if snap.parts > 1 or snap.tiles > 1:  # each piece chose its own step
        what = f"{snap.parts} {part_noun}s" if snap.parts > 1 else f"{snap.tiles} tiles"
        text = f"{ended}: {what} · {snap.step} steps · {duration(snap.elapsed)}"
    else:
        chosen = "" if snap.best_step is None else f" · result from step {snap.best_step}"
        text = f"{ended} at step {snap.step}{chosen} · {duration(snap.elapsed)}"
    return text + psnr_text(snap)
