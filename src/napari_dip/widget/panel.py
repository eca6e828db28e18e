"""The run's buttons and feedback: Run, Stop, Estimate, the estimate, the progress bar and the
curve plot. Knows nothing of layers or threads; the dock tells it what happens.

The bar has a fixed scale (``snapshot.progress`` × :data:`~.progress.BAR_MAX`): its maximum
never changes during a run, and it ends full when the run ends by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..pipeline.snapshot import estimate_text
from .plot import CurvePlot
from .progress import BAR_MAX, bar_value, final_text, running_text

if TYPE_CHECKING:
    from ..pipeline.snapshot import Snapshot

__all__ = ["RUN_KEYS", "STOP_KEY", "RunPanel"]

RUN_KEYS = ("Ctrl+Return", "Ctrl+Enter")  # Return and the keypad's Enter
STOP_KEY = "Escape"


def _shown(key: str) -> str:
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)


class RunPanel(QWidget):
    """Buttons, estimate text, progress bar and plot, one under the other."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip(
            "restore the image with these settings; a new layer shows the result as it "
            f"improves ({_shown(RUN_KEYS[0])} with the dock in focus)"
        )
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip(
            f"stop after the current step; the result so far is kept ({_shown(STOP_KEY)})"
        )
        self.estimate_button = QPushButton("Estimate")
        self.estimate_button.setToolTip(
            "time a few steps of the network on this image, device and precision, and say "
            "how long the run will typically and at most take (a few seconds)"
        )
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, BAR_MAX)
        self.progress.setValue(0)
        self.progress.setFormat("ready")
        self.progress.setTextVisible(True)
        self.plot = CurvePlot()

        buttons = QHBoxLayout()
        for button in (self.run_button, self.stop_button, self.estimate_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot)

    def set_busy(self, busy: bool, running: bool = False) -> None:
        """A run or an estimate in progress: only Stop (of a run) is on."""
        self.run_button.setEnabled(not busy)
        self.estimate_button.setEnabled(not busy)
        self.stop_button.setEnabled(running)

    def started(self) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.progress.setToolTip("")
        self.plot.clear()

    def stopping(self) -> None:
        self.stop_button.setEnabled(False)
        self.progress.setFormat("stopping…")

    def show_snapshot(self, snap: Snapshot, noun: str, stopping: bool) -> None:
        """A snapshot: the plot, the bar, and where the run is (unless it is stopping)."""
        self.plot.add(snap)
        if snap.stop_reason is None and not stopping:
            self.progress.setFormat(running_text(snap, noun))
        self.progress.setValue(bar_value(snap))

    def ended(self, last: Snapshot | None, noun: str, failed: bool) -> None:
        """The run's end: how it ended, short; the whole stop reason in the tooltip."""
        if failed or last is None or last.stop_reason is None:
            self.progress.setFormat("failed" if failed or last is None else "stopped")
            return
        self.progress.setFormat(final_text(last, noun))
        tip = last.stop_reason
        if last.estimated_psnr is not None:
            tip += (
                f"\n{estimate_text(last)}: the PSNR the stop rule estimates, without "
                "ground truth (in brackets: the range its own sampling error allows)"
            )
        if last.fusion_weight is not None:
            tip += (
                f"\nblended with a classical estimate: the network's weight "
                f"{last.fusion_weight:.2f}, chosen without ground truth (by SURE when "
                "denoising, on the held-out known pixels when inpainting)"
            )
        self.progress.setToolTip(tip)
        self.progress.setValue(bar_value(last))
