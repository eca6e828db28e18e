"""The live curve plot under the progress bar, drawn with QPainter (no plotting library).

Loss (blue, left axis) and stop score (orange, right axis) against the run's step, each on its
own log scale, one line per piece (tile, slice) so pieces fitted one after the other or side
by side are not joined; the step of the chosen estimate (green) and where the run stopped
(red, dashed) marked; axis labels and, above the plot, a legend of what is drawn; the PSNR a
stop rule estimates without ground truth (``sure``, ``validation``), once known, in the
plot's top right corner as text (it comes as pieces end: too few points for a curve). What it
shows is kept as plain data (:attr:`CurvePlot.loss`, :attr:`~CurvePlot.scores`,
:meth:`~CurvePlot.legend` …), so it can be checked without looking at pixels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

from ..pipeline.snapshot import estimate_text

if TYPE_CHECKING:
    from ..pipeline.snapshot import Snapshot

__all__ = ["CurvePlot", "log_span", "step_ticks"]

Points = list[tuple[int, float]]


def step_ticks(last: int, count: int = 4) -> list[int]:
    """Round step values from 0 to about ``last`` for the x axis (at most ``count`` + 1)."""
    if last <= 0:
        return [0]
    raw = last / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [int(i * step) for i in range(int(last // step) + 1)]


def log_span(points: Points) -> tuple[float, float] | None:
    """The log10 range of the positive, finite values of ``points`` (None: under two)."""
    logs = [math.log10(v) for _, v in points if v > 0 and math.isfinite(v)]
    if len(logs) < 2:
        return None
    lo, hi = min(logs), max(logs)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _short(value: float) -> str:
    return f"{value:.2g}"


class CurvePlot(QWidget):
    """Loss and stop score per step, log scales, chosen and stop steps marked."""

    LOSS = QColor(70, 130, 230)
    SCORE = QColor(240, 150, 40)
    BEST = QColor(60, 200, 90)
    STOP = QColor(230, 60, 60)
    TEXT = QColor(200, 200, 200)
    AXIS_LABELS = ("step", "loss", "score")  # x, left, right
    MARGIN = (38.0, 16.0, 38.0, 26.0)  # left, top (the legend), right, bottom
    END_ROOM = 1.03  # the x axis runs a little past the last step, so marks there show
    EMPTY = "the loss and the stop score appear here during a run"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(130)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "loss (blue, left axis) and stop score (orange, right axis) against the step, log "
            "scales; green: the step of the estimate the stop rule chose (the result); red: "
            "where the run stopped"
        )
        self.clear()

    def clear(self) -> None:
        self.loss: Points = []
        self.scores: Points = []
        self._lines: dict[tuple, tuple[Points, Points]] = {}  # per piece: its loss, scores
        self.best_step: int | None = None
        self.stop_step: int | None = None
        self.estimated_psnr: float | None = None
        self.estimate_text = ""  # the estimated PSNR with its range, as drawn
        self.update()

    def add(self, snap: Snapshot) -> None:
        loss, scores = self._lines.setdefault((snap.job, snap.part, snap.tile), ([], []))
        if math.isfinite(snap.loss):
            self.loss.append((snap.step, snap.loss))
            loss.append((snap.step, snap.loss))
        self.scores.extend(snap.scores)
        scores.extend(snap.scores)
        self.best_step = snap.best_step
        if snap.estimated_psnr is not None and math.isfinite(snap.estimated_psnr):
            self.estimated_psnr = snap.estimated_psnr
            self.estimate_text = estimate_text(snap)
        if snap.stop_reason is not None:
            self.stop_step = snap.step
        self.update()

    # --- what is drawn, as data ---------------------------------------------------------------

    def last_step(self) -> int:
        steps = [s for s, _ in self.loss + self.scores]
        steps += [s for s in (self.best_step, self.stop_step) if s is not None]
        return max([*steps, 1])

    def legend(self) -> list[tuple[str, QColor]]:
        """The legend's entries: the series and marks there is something of to draw."""
        entries = []
        if log_span(self.loss) is not None:
            entries.append(("loss", self.LOSS))
        if log_span(self.scores) is not None:
            entries.append(("stop score", self.SCORE))
        if self.best_step is not None:
            entries.append(("chosen step", self.BEST))
        if self.stop_step is not None:
            entries.append(("stop", self.STOP))
        return entries

    # --- painting -----------------------------------------------------------------------------

    def _area(self) -> QRectF:
        left, top, right, bottom = self.MARGIN
        return QRectF(left, top, self.width() - left - right, self.height() - top - bottom)

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(30, 30, 30))
        font = QFont(painter.font())
        font.setPointSizeF(7.5)
        painter.setFont(font)
        area = self._area()
        painter.setPen(QPen(QColor(90, 90, 90), 1))
        painter.drawRect(area)
        x_max = self.last_step()

        def x_of(step: float) -> float:
            return area.left() + area.width() * step / (x_max * self.END_ROOM)

        self._x_axis(painter, area, x_of, x_max)
        for k, (points, color, side) in enumerate(
            ((self.loss, self.LOSS, "left"), (self.scores, self.SCORE, "right"))
        ):
            lines = [pair[k] for pair in self._lines.values()]
            self._series(painter, area, x_of, points, lines, color, side)
        for step, color, style in (  # the chosen step over the stop, where they coincide
            (self.stop_step, self.STOP, Qt.PenStyle.DashLine),
            (self.best_step, self.BEST, Qt.PenStyle.SolidLine),
        ):
            if step is not None:
                painter.setPen(QPen(color, 1.5, style))
                x = x_of(step)
                painter.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()))
        if self.stop_step is not None:  # and a small flag on top, seen in any case
            x = x_of(self.stop_step)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self.STOP)
            top = area.top()
            painter.drawPolygon(
                QPolygonF([QPointF(x - 4, top), QPointF(x + 4, top), QPointF(x, top + 6)])
            )
        self._legend(painter, area)
        if self.estimated_psnr is not None:
            painter.setPen(QPen(self.TEXT, 1))
            inner = area.adjusted(0, 2, -4, 0)
            flags = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop
            painter.drawText(inner, flags, self.estimate_text)
        if not self.loss and not self.scores:
            painter.setPen(QPen(self.TEXT, 1))
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, self.EMPTY)
        painter.end()

    def _x_axis(self, painter: QPainter, area: QRectF, x_of: Any, x_max: int) -> None:
        painter.setPen(QPen(self.TEXT, 1))
        metrics = painter.fontMetrics()
        for tick in step_ticks(x_max) if self.loss or self.scores else ():
            x = x_of(tick)
            painter.drawLine(QPointF(x, area.bottom()), QPointF(x, area.bottom() + 3))
            text = str(tick)
            width = metrics.horizontalAdvance(text)
            painter.drawText(QPointF(x - width / 2, area.bottom() + 4 + metrics.ascent()), text)
        label = self.AXIS_LABELS[0]
        painter.drawText(
            QPointF(area.right() - metrics.horizontalAdvance(label), self.height() - 2), label
        )

    def _series(
        self,
        painter: QPainter,
        area: QRectF,
        x_of: Any,
        points: Points,
        lines: list[Points],
        color: QColor,
        side: str,
    ) -> None:
        """A series on its own log scale (from all ``points``), drawn as ``lines``."""
        span = log_span(points)
        if span is None:
            return
        lo, hi = span

        def y_of(log_value: float) -> float:
            return area.top() + area.height() * (hi - log_value) / (hi - lo)

        painter.setPen(QPen(color, 1.5))
        for line in lines:
            painter.drawPolyline(
                QPolygonF(
                    [
                        QPointF(x_of(s), y_of(math.log10(v)))
                        for s, v in line
                        if v > 0 and math.isfinite(v)
                    ]
                )
            )
        # the axis: its range at the ends and its name, in the series' colour
        metrics = painter.fontMetrics()
        name = self.AXIS_LABELS[1 if side == "left" else 2]
        for text, y in (
            (_short(10**hi), area.top() + metrics.ascent()),
            (name, area.center().y() + metrics.ascent() / 2),
            (_short(10**lo), area.bottom()),
        ):
            width = metrics.horizontalAdvance(text)
            x = area.left() - width - 3 if side == "left" else area.right() + 3
            painter.drawText(QPointF(x, y), text)

    def _legend(self, painter: QPainter, area: QRectF) -> None:
        metrics = painter.fontMetrics()
        x, y = area.left(), 1.0  # above the plot area
        for name, color in self.legend():
            width = 16 + metrics.horizontalAdvance(name)
            if x + width > self.width() and x > area.left():  # no room left: stop
                break
            painter.setPen(QPen(color, 2))
            middle = y + metrics.height() / 2
            painter.drawLine(QPointF(x, middle), QPointF(x + 12, middle))
            painter.setPen(QPen(self.TEXT, 1))
            painter.drawText(QPointF(x + 16, y + metrics.ascent()), name)
            x += width + 10
