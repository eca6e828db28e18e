"""The terminal side of a run: a progress bar with one fixed total, and Ctrl-C as a stop."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from ..pipeline.snapshot import Snapshot, estimate_text, progress_text

__all__ = ["BAR_TOTAL", "StopOnCtrlC", "describe_end", "follow", "format_seconds"]

BAR_TOTAL = 1000  # the bar counts thousandths of the run: one total, whatever the pieces


class StopOnCtrlC:
    """The first Ctrl-C becomes a stop request the fit honours after its current step (the run
    then ends with the work so far); a second one interrupts at once."""

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.requested = False
        self._previous: Any = None

    def __call__(self) -> bool:  # the should_stop callback
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\n{self.prog}: stopping after the current step (Ctrl-C again to stop at once)",
            file=sys.stderr,
        )

    def __enter__(self) -> StopOnCtrlC:
        # Only the main thread may set handlers; an ignored SIGINT (a background job) stays so.
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def format_seconds(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s"


def _postfix(snap: Snapshot) -> str:
    text = f"{progress_text(snap)} · loss {snap.loss:.4g}"
    if snap.score is not None:
        text += f" · score {snap.score:.3g}"
    if snap.stop_reason is None and snap.step:
        text += f" · about {format_seconds(snap.eta)} left"
    estimate = estimate_text(snap)
    return f"{text} · {estimate}" if estimate else text


def follow(
    snapshots: Iterator[Snapshot], stop: StopOnCtrlC, description: str, quiet: bool
) -> tuple[Snapshot, bool]:
    """Run to the end behind a progress bar; return the last snapshot and whether a second
    Ctrl-C interrupted the run (the last snapshot then holds the work so far)."""
    from tqdm import tqdm

    last = None
    bar = tqdm(
        total=BAR_TOTAL,
        desc=description,
        file=sys.stderr,
        disable=quiet,
        dynamic_ncols=True,
        mininterval=0,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
    )
    with stop, bar:
        try:
            for last in snapshots:
                bar.set_postfix_str(_postfix(last), refresh=False)
                bar.update(round(last.progress * BAR_TOTAL) - bar.n)
        except KeyboardInterrupt:  # a second Ctrl-C: drop the step in progress, keep the rest
            if last is None:
                raise
            return last, True
    assert last is not None
    return last, stop.requested


def describe_end(last: Snapshot) -> str:
    """Where and why the run ended, and which step's estimate is the result."""
    camera = last.camera
    used = (
        ""
        if camera is None
        else f"; camera: gain {camera.gain:.4g}, offset {camera.offset:.4g}, "
        f"read noise {camera.read_noise:.4g}"
    )
    where = f"{last.step} steps" if last.pieces > 1 else f"step {last.step}"
    chosen = "" if last.pieces > 1 else f"; result: the estimate of step {last.best_step}"
    fused = ""
    if last.fusion_weight is not None:
        fused = f"; fused with the classical estimate, network's weight {last.fusion_weight:.2f}"
    estimate = estimate_text(last)
    estimate = f"; estimated PSNR {estimate.removeprefix('≈ ')}" if estimate else ""
    return f"stopped after {where} ({last.stop_reason}){chosen}{fused}{estimate}{used}"
