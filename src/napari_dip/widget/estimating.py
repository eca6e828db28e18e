"""A dock's *Estimate*: a few steps of the run's network timed in a worker, and the text under
the buttons that says how long the run will typically and at most take.

An estimate is shown only for the settings it timed: a change of the form meanwhile makes it
stale, and the text says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error
from qtpy.QtWidgets import QLabel

from .worker import start_estimate

if TYPE_CHECKING:
    from ..estimate import TimeEstimate

__all__ = ["VOLUME", "Estimates"]

VOLUME = (
    "estimate: not available for a 3D volume (only 2D fits can be timed); a volume takes "
    "much longer than one of its slices"
)


class Estimates:
    """The estimate of one dock, shown in ``label``; ``on_done`` when a worker has ended."""

    def __init__(self, label: QLabel, on_done: Callable[[], None]) -> None:
        self.label = label
        self._on_done = on_done
        self._worker: Any = None
        self._version = 0  # bumped by every change of the form
        self._timed: tuple[int, int, tuple[int, int]] | None = None  # version, slices, shape
        self._members = 1
        self._closed = False  # the dock is gone: a late result touches nothing

    @property
    def running(self) -> bool:
        return self._worker is not None

    def settings_changed(self) -> None:
        self._version += 1
        if not self.running and not self._closed:
            self.label.setText("")  # no longer about these settings

    def show(self, text: str) -> None:
        self.label.setText(text)

    def closed(self) -> None:
        self._closed = True

    def start(self, kwargs: dict[str, Any], slices: int, members: int = 1) -> None:
        """Time ``estimate_time(**kwargs)`` in a worker; the run makes ``slices`` such fits,
        each ``members`` times (an ensemble)."""
        self._timed = (self._version, slices, kwargs["shape"])
        self._members = members
        self.label.setText("estimating: timing a few steps…")
        self._worker = start_estimate(kwargs, self._returned, self._finished)

    def _returned(self, result: TimeEstimate | str) -> None:
        from ..estimate import describe

        assert self._timed is not None
        version, slices, (h, w) = self._timed
        if self._closed:
            return
        if isinstance(result, str):
            self.label.setText("")
            show_error(f"Deep Image Prior: {result}")
        elif version != self._version:
            self.label.setText("the settings changed meanwhile: estimate again")
        else:
            text = describe(result, slices)
            if self._members > 1:  # every member is a whole fit
                text += (
                    f"\nan ensemble of {self._members}: in all "
                    f"{result.times(slices * self._members)}"
                )
            self.label.setText(text)
            self.label.setToolTip(
                f"{result.seconds_per_step * 1000:.3g} ms per step, timed on {h}×{w} pixels "
                "now; the load on the machine changes it. 'Typically': where the stop rule "
                "usually ends a run"
            )

    def _finished(self) -> None:
        self._worker = None
        if not self._closed:
            self._on_done()
