"""Dock widgets: denoise, inpaint and super-resolve with Deep Image Prior.

Three thin widgets over one base, :class:`RestoreWidget`: each task has its own inputs (a mask
layer, a factor) and defaults, so each gets its own menu entry and shows only what applies.

Threading: everything the run needs (layer data, widget values) is read and copied on the main
thread, and :func:`~napari_dip.restore.restore_steps` is *called* there too, so bad input is
reported at once. The worker only iterates the snapshot generator; every layer change happens
in slots connected to the worker's signals, which run on the main thread. "Estimate time"
times a few steps in a worker of its own, read and reported the same way. torch is imported
when a widget is created or run, never when this module is imported.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    LineEdit,
    SpinBox,
    Widget,
)
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ._layers import (
    Plane,
    current_plane,
    layer_axes,
    output_transform,
    place,
    stack_transform,
    unique_name,
)
from ._tiling import tile_progress
from .estimate import describe

if TYPE_CHECKING:
    import napari

    from .estimate import TimeEstimate
    from .restore import Snapshot

__all__ = ["DenoiseWidget", "InpaintWidget", "RestoreWidget", "SuperResolveWidget"]

log = logging.getLogger(__name__)

_DEVICE_LABELS = {"auto": "auto (best available)", "cpu": "CPU", "mps": "Apple MPS"}


def _device_choices() -> list[tuple[str, str]]:
    """Only the devices this machine has (imports torch, hence called from a widget only)."""
    from .engine.device import available_devices

    names = ["auto", *available_devices()]
    return [(_DEVICE_LABELS.get(n, n.upper().replace(":", " ")), n) for n in names]


def _preset_choices() -> list[tuple[str, str]]:
    """Every preset of the engine (imports torch, hence called from a widget only)."""
    from .engine import PRESETS

    return [(name, name) for name in PRESETS]


def _preset_tooltip() -> str:
    from .engine import PRESETS

    return "\n".join(f"{name}: {preset.description}" for name, preset in PRESETS.items())


# value -> label; the values are restore_steps' ``stop`` names
_STOP_CHOICES = [
    ("auto (ES-WMV + discrepancy)", "auto"),
    ("windowed variance (ES-WMV)", "wmv"),
    ("exponential variance (ES-EMV)", "emv"),
    ("blur/sharpness ratio", "sharpness"),
    ("discrepancy (noise level)", "discrepancy"),
    ("none: run all steps", "none"),
]
# value -> label: what of a layer with more than two dimensions is restored
_MODE_CHOICES = [
    ("current slice", "current"),
    ("every slice/frame as 2D", "slices"),
    ("as a 3D volume", "volume"),
]

# value -> label; the values are restore_steps' ``precision`` names (engine.device.PRECISIONS)
_PRECISION_CHOICES = [
    ("auto", "auto"),
    ("float32", "float32"),
    ("bfloat16", "bfloat16"),
    ("float16 (CUDA only)", "float16"),
]

# value -> label; the values are restore_steps' ``noise`` names
_NOISE_CHOICES = [
    ("Gaussian (squared error)", "gaussian"),
    ("Poisson (photon counts)", "poisson"),
    ("Poisson–Gaussian (counts + read noise)", "poisson-gaussian"),
]


class CurvePlot(QWidget):
    """A tiny live plot: loss (blue) and stop score (orange) against the step, each on its own
    log scale, with the chosen (best) step marked green and the stop step red."""

    LOSS = QColor(70, 130, 230)
    SCORE = QColor(240, 150, 40)
    BEST = QColor(60, 200, 90)
    STOP = QColor(230, 60, 60)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "loss (blue) and stop score (orange) per step, log scales; green: the "
            "step of the chosen estimate; red: where the run stopped"
        )
        self.clear()

    def clear(self) -> None:
        self.loss: list[tuple[int, float]] = []
        self.scores: list[tuple[int, float]] = []
        self.best_step: int | None = None
        self.stop_step: int | None = None
        self.total_steps = 1
        self.update()

    def add(self, snap: Snapshot) -> None:
        self.loss.append((snap.step, snap.loss))
        self.scores.extend(snap.scores)
        self.best_step = snap.best_step
        self.total_steps = max(snap.total_steps, 1)
        if snap.stop_reason is not None:
            self.stop_step = snap.step
        self.update()

    def _polyline(self, points: list[tuple[int, float]], x_of: Callable[[float], float]):
        values = [(s, math.log10(v)) for s, v in points if v > 0 and math.isfinite(v)]
        if len(values) < 2:
            return None
        lo = min(v for _, v in values)
        hi = max(v for _, v in values)
        span = hi - lo or 1.0
        top, height = 4.0, self.height() - 8.0
        return QPolygonF([QPointF(x_of(s), top + height * (hi - v) / span) for s, v in values])

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(30, 30, 30))
        last = max([s for s, _ in self.loss + self.scores] or [1])
        x_max = max(last, 1)
        width = self.width() - 8.0

        def x_of(step: float) -> float:
            return 4.0 + width * step / x_max

        for color, points in ((self.LOSS, self.loss), (self.SCORE, self.scores)):
            line = self._polyline(points, x_of)
            if line is not None:
                painter.setPen(QPen(color, 1.5))
                painter.drawPolyline(line)
        for color, step, style in (
            (self.BEST, self.best_step, Qt.PenStyle.SolidLine),
            (self.STOP, self.stop_step, Qt.PenStyle.DashLine),
        ):
            if step is not None:
                painter.setPen(QPen(color, 1.5, style))
                x = x_of(step)
                painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.end()


def _format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _iterate(snapshots: Iterator[Snapshot]) -> Iterator[Snapshot]:
    """The worker's body: only walks the generator.

    A failure is returned as a plain message (shown by the main thread) rather than raised,
    so the user sees one clear notification; the traceback goes to the log.
    """
    try:
        yield from snapshots
    except Exception as err:
        log.error("Deep Image Prior run failed", exc_info=True)
        if isinstance(err, RuntimeError) and "out of memory" in str(err).lower():
            return (  # torch.OutOfMemoryError is a RuntimeError
                "out of memory while restoring: try a smaller image, the 'fast' preset or "
                "the CPU device"
            )
        return f"the run failed: {err}"
    return None


def _time_one_fit(request: dict[str, Any]) -> TimeEstimate | str:
    """The estimate worker's body: time a few steps of one 2D fit (see
    :func:`napari_dip.estimate_time`); a failure is returned as a message, as in ``_iterate``."""
    from .estimate import estimate_time

    try:
        return estimate_time(**request)
    except Exception as err:
        log.error("Deep Image Prior time estimate failed", exc_info=True)
        return f"the estimate failed: {err}"


@dataclass(frozen=True)
class _EstimateRequest:
    """What the estimate times (one 2D image, whole or in tiles) and how many such images the
    run restores."""

    kwargs: dict[str, Any]  # estimate_time's arguments
    slices: int = 1  # slices/frames of a stack restored one by one


def _camera_metadata(snap: Snapshot) -> dict[str, Any]:
    """The camera gain, offset and read noise a Poisson model used (given or estimated)."""
    camera = getattr(snap, "camera", None)
    if camera is None:
        return {}
    return {"camera": {k: float(getattr(camera, k)) for k in ("gain", "offset", "read_noise")}}


@dataclass
class _Run:
    """State of one run, owned by the main thread."""

    source: str
    name: str
    plane: Plane
    layer_kwargs: dict[str, Any]
    params: dict[str, Any]
    stop: threading.Event
    keep_history: bool
    layer: Image | None = None
    history: list[np.ndarray] = field(default_factory=list)
    history_steps: list[int] = field(default_factory=list)
    last: Snapshot | None = None
    failure: str | None = None


class RestoreWidget(QWidget):
    """Shared form, run/stop logic and output handling; subclasses set the task."""

    task: ClassVar[str] = "denoise"
    suffix: ClassVar[str] = "denoised"

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._viewer = viewer
        self._run: _Run | None = None
        self._worker: Any = None
        self._estimate_worker: Any = None
        self._estimate_pending: tuple[_EstimateRequest, int] | None = None
        # bumped by every form change: an estimate is shown only for the settings it timed
        self._settings_version = 0
        # (value shown, exact value) of the preset's defaults in spin boxes that round them
        self._preset_defaults: dict[str, tuple[float, float]] = {}

        self.image = ComboBox(label="image", choices=self._layers_of(Image))
        self.mode = ComboBox(
            label="restore",
            choices=_MODE_CHOICES,
            value="current",
            tooltip="for stacks and time-lapses: the slice shown now, every slice/frame one "
            "after the other as 2D images, or every Z-stack with a 3D network",
        )
        self.axes = LineEdit(
            label="axes",
            value="",
            tooltip="what each axis of the layer is, one letter each from T (time), Z (depth), "
            "C (channels), Y, X, e.g. TZYX; blank: from the layer's axis labels and RGB flag",
        )
        self.preset = ComboBox(
            label="preset", choices=_preset_choices(), value="fast", tooltip=_preset_tooltip()
        )
        self.stop_rule = ComboBox(
            label="stop",
            # the discrepancy rule compares with the noise level of y: denoising only
            choices=[c for c in _STOP_CHOICES if self.task == "denoise" or c[1] != "discrepancy"],
            value="auto",
            tooltip="when to stop without ground truth; the result is the estimate the rule "
            "chose, not the last one. 'none' runs all steps",
        )
        self.noise = ComboBox(
            label="noise model",
            choices=_NOISE_CHOICES,
            value="gaussian",
            tooltip="the data term: Gaussian (squared error) for most images; Poisson for "
            "photon counts (low-light fluorescence); Poisson–Gaussian adds camera read noise. "
            "Camera gain and offset are estimated unless set under Advanced options",
        )
        self.steps = SpinBox(
            label="steps",
            min=1,
            max=1_000_000,
            step=50,
            tooltip="the most steps to run (an automatic stop usually ends the run earlier)",
        )
        self.update_every = SpinBox(
            label="update every",
            value=25,
            min=1,
            max=100_000,
            tooltip="steps between updates of the result layer",
        )
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.device = ComboBox(label="device", choices=_device_choices())
        self.keep_history = CheckBox(
            text="keep every update as a stack layer",
            tooltip="after the run, add a layer with one plane per update, to scrub through",
        )
        self._form = Container(
            widgets=[
                self.image,
                self.mode,
                self.axes,
                *self._task_widgets(),
                self.preset,
                self.stop_rule,
                self.noise,
                self.steps,
                self.update_every,
                self.seed,
                self.device,
                self.keep_history,
            ]
        )

        self.lr = FloatSpinBox(label="learning rate", min=1e-5, max=1.0, step=1e-4)
        self.perturb_std = FloatSpinBox(
            label="input noise",
            min=0.0,
            max=1.0,
            step=1e-4,
            tooltip="std of the noise added to the network input at every step",
        )
        self.precision = ComboBox(
            label="precision",
            choices=_PRECISION_CHOICES,
            value="auto",
            tooltip="arithmetic of the network's forward pass.\n"
            "auto: bfloat16 where the hardware computes it natively (CUDA GPUs; recent CPUs "
            "with AVX512-BF16 or AMX), else float16 on older CUDA GPUs, else float32\n"
            "float32: exact, the reference\n"
            "bfloat16: faster where native; emulated (slow) on other CPUs\n"
            "float16: CUDA GPUs only",
        )
        self.tv_weight = FloatSpinBox(
            label="TV weight",
            value=0.0,
            min=0.0,
            max=10.0,
            step=1e-4,
            tooltip="weight of a total-variation term (0 = plain Deep Image Prior)",
        )
        self.estimate_camera = CheckBox(
            text="estimate camera gain and offset",
            value=True,
            tooltip="Poisson noise models: estimate the gain and offset from the image (a "
            "mean–variance fit); untick to give them",
        )
        self.gain = FloatSpinBox(
            label="gain",
            value=1.0,
            min=1e-6,
            max=1e6,
            step=0.01,
            enabled=False,
            tooltip="camera gain: intensity units per photon (Poisson noise models)",
        )
        self.offset = FloatSpinBox(
            label="offset",
            value=0.0,
            min=-1e9,
            max=1e9,
            step=1.0,
            enabled=False,
            tooltip="camera offset (dark level), in intensity units (Poisson noise models)",
        )
        self.estimate_camera.changed.connect(self._apply_camera_enabled)
        self.tile = SpinBox(
            label="tile size",
            value=0,
            min=0,
            max=16384,
            step=64,
            tooltip="0 = auto: a big image is restored in overlapping tiles (one fit each, "
            "blended without seams) of a side chosen from the preset, device and task "
            "(denoising with 'fast' on a CPU: images over about 204² in 144-px tiles, which is "
            "faster); or a side in pixels (>= 16) to tile with",
        )
        self._advanced = Container(
            widgets=[
                self.lr,
                self.perturb_std,
                self.precision,
                self.tv_weight,
                self.tile,
                self.estimate_camera,
                self.gain,
                self.offset,
            ]
        )
        self.advanced = QCollapsible("Advanced options")
        self.advanced.addWidget(self._advanced.native)

        self.run_button = QPushButton("Run")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("stop after the current step; the result so far is kept")
        self.estimate_button = QPushButton("Estimate time")
        self.estimate_button.setToolTip(
            "time a few steps of the network on this image, device and precision, and say "
            "how long the run will typically and at most take (takes a few seconds)"
        )
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFormat("ready")
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.plot = CurvePlot()

        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.estimate_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self._form.native)
        layout.addWidget(self.advanced)
        layout.addLayout(buttons)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot)
        layout.addStretch(1)

        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.estimate_button.clicked.connect(self.estimate)
        self.preset.changed.connect(self._apply_preset_defaults)
        self.stop_rule.changed.connect(self._apply_preset_defaults)
        self._apply_preset_defaults()
        self.reset_choices()
        self._form.changed.connect(self._settings_changed)
        self._advanced.changed.connect(self._settings_changed)

    # --- task hooks -------------------------------------------------------------------------

    def _task_widgets(self) -> list[Widget]:
        return []

    def _task_kwargs(self, image_layer: Image, plane: Plane) -> dict[str, Any]:
        """Extra ``restore_steps`` arguments, copied from the layers on the main thread."""
        return {}

    def _factor(self) -> int:
        return 1

    # --- form helpers -----------------------------------------------------------------------

    def _layers_of(self, kind: type) -> Callable[[Any], list[tuple[str, Any]]]:
        def choices(_widget: Any) -> list[tuple[str, Any]]:
            return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, kind)]

        return choices

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer dropdowns; napari calls this when layers change."""
        self._form.reset_choices()

    def _apply_preset_defaults(self, *_: Any) -> None:
        from .engine.presets import get_preset
        from .restore import default_steps

        preset = get_preset(self.preset.value)
        settings = preset.task(self.task)
        self.steps.value = default_steps(preset.name, self.task, self.stop_rule.value)
        # the boxes show 4 decimals (1/30 as 0.0333): remember what they show for the exact
        # defaults, so a box left at its default passes the exact value (see _exact_value)
        for name, exact in (("lr", preset.lr), ("perturb_std", settings.perturb_std)):
            box = getattr(self, name)
            box.value = exact
            self._preset_defaults[name] = (box.value, float(exact))

    def _exact_value(self, name: str) -> float:
        """The value of the spin box ``self.<name>``, or the preset's exact default where the
        box shows that default rounded."""
        value = float(getattr(self, name).value)
        shown, exact = self._preset_defaults.get(name, (math.nan, math.nan))
        return exact if value == shown else value

    def _apply_camera_enabled(self, *_: Any) -> None:
        self.gain.enabled = self.offset.enabled = not self.estimate_camera.value

    def _noise_kwargs(self) -> dict[str, Any]:
        """``restore_steps``' noise arguments: the camera only for the photon-count models."""
        kwargs: dict[str, Any] = {"noise": self.noise.value}
        if self.noise.value != "gaussian" and not self.estimate_camera.value:
            kwargs["gain"] = float(self.gain.value)
            kwargs["offset"] = float(self.offset.value)
        return kwargs

    def _set_busy(self, busy: bool) -> None:
        """A run or an estimate in progress: the form and the buttons that start one are off."""
        self._form.enabled = not busy
        self._advanced.enabled = not busy
        self.run_button.setEnabled(not busy)
        self.estimate_button.setEnabled(not busy)

    def _set_running(self, running: bool) -> None:
        self._set_busy(running)
        self.stop_button.setEnabled(running)

    def _settings_changed(self, *_: Any) -> None:
        self._settings_version += 1
        if not self.estimating:
            self.estimate_label.setText("")  # no longer about these settings

    @property
    def running(self) -> bool:
        return self._run is not None

    @property
    def estimating(self) -> bool:
        return self._estimate_worker is not None

    # --- run --------------------------------------------------------------------------------

    def run(self) -> None:
        """Start a restoration of the selected layer; problems become error notifications."""
        if self.running or self.estimating:
            return
        try:
            snapshots, run = self._prepare()
        except Exception as err:  # a plain message, the viewer stays usable
            if not isinstance(err, ValueError | TypeError):
                log.exception("could not start the restoration")
            show_error(f"Deep Image Prior: {err}")
            return
        self._run = run
        self._set_running(True)
        self.progress.setRange(0, int(run.params["steps"]))
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.plot.clear()
        worker = create_worker(_iterate, snapshots, _start_thread=False)
        worker.yielded.connect(self._on_snapshot)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.destroyed.connect(run.stop.set)  # viewer closed mid-run: let the worker end
        worker.start()

    def stop(self) -> None:
        """Ask the run to stop after its current step; it still delivers a final snapshot."""
        if self._run is not None:
            self._run.stop.set()
            self.stop_button.setEnabled(False)
            self.progress.setFormat("stopping…")

    def estimate(self) -> None:
        """Say how long the run the form describes will take, under the buttons: a few steps
        are timed in a worker thread (a few seconds); problems become error notifications."""
        if self.running or self.estimating:
            return
        try:
            request = self._estimate_request()
        except Exception as err:  # a plain message, the viewer stays usable
            if not isinstance(err, ValueError | TypeError):
                log.exception("could not estimate the run time")
            self.estimate_label.setText("")
            show_error(f"Deep Image Prior: {err}")
            return
        if request is None:
            self.estimate_label.setText(
                "estimate: not available for a 3D volume (only 2D fits can be timed); a "
                "volume takes much longer than one of its slices"
            )
            return
        self._estimate_pending = (request, self._settings_version)
        worker = create_worker(_time_one_fit, request.kwargs, _start_thread=False)
        worker.returned.connect(self._on_estimate)
        worker.finished.connect(self._on_estimate_finished)
        self._estimate_worker = worker
        self._set_busy(True)
        self.estimate_label.setText("estimating: timing a few steps…")
        worker.start()

    def _estimate_request(self) -> _EstimateRequest | None:
        """What to time, read on the main thread: one 2D fit as ``_prepare`` would restore it
        (the current plane, or a slice of the stack; a tile of a big image); None for a 3D
        volume, which cannot be timed. Raises ``ValueError`` for what a run would refuse."""
        from . import engine
        from ._axes import make_plan

        layer = self.image.value
        if layer is None:
            raise ValueError("choose an image layer to estimate for")
        if layer.multiscale:
            raise ValueError(f"{layer.name!r} is multiscale, which is not supported yet")
        shape = tuple(int(n) for n in layer.data.shape)
        slices = 1
        if self.mode.value == "current":
            plane = current_plane(layer, self._viewer)
            height, width = (shape[a] for a in plane.axes)
            channels = shape[-1] if layer.rgb else 1
        else:
            axes = layer_axes(layer, self.axes.value)
            plan = make_plan(shape, axes, self.mode.value)
            if plan.mode == "volume":
                return None
            height, width, channels = (plan.size(a) for a in "YXC")
            slices = plan.count
        device, precision = self.device.value, self.precision.value
        engine.autocast_dtype(engine.resolve_device(device), precision)  # refused at once
        factor = self._factor()
        preset = engine.get_preset(self.preset.value)
        kwargs = {
            "shape": (height, width),
            "task": self.task,
            "factor": factor,
            "channels": channels,
            "preset": preset.name,
            "steps": int(self.steps.value),
            "stop": self.stop_rule.value,
            "device": device,
            "precision": precision,
            "tile": int(self.tile.value) or "auto",  # a big image is timed on one tile
        }
        return _EstimateRequest(kwargs, slices)

    def _on_estimate(self, result: TimeEstimate | str) -> None:
        assert self._estimate_pending is not None
        request, version = self._estimate_pending
        if isinstance(result, str):
            self.estimate_label.setText("")
            show_error(f"Deep Image Prior: {result}")
            return
        if version != self._settings_version:
            self.estimate_label.setText("the settings changed meanwhile: estimate again")
            return
        self.estimate_label.setText(describe(result, request.slices))
        self.estimate_label.setToolTip(
            f"{result.seconds_per_step * 1000:.3g} ms per step, timed on "
            f"{request.kwargs['shape'][0]}×{request.kwargs['shape'][1]} pixels now; the load "
            "on the machine changes it. 'Typically': where the stop rule usually ends a run"
        )

    def _on_estimate_finished(self) -> None:
        self._estimate_worker = None
        self._set_busy(False)

    def _prepare(self) -> tuple[Iterator[Snapshot], _Run]:
        from .restore import restore_steps

        layer = self.image.value
        if layer is None:
            raise ValueError("choose an image layer to restore")
        if layer.multiscale:
            raise ValueError(f"{layer.name!r} is multiscale, which is not supported yet")
        mode = self.mode.value
        stack: dict[str, Any] = {}  # restore_steps' axes and mode, for a whole stack
        if mode == "current":
            plane = current_plane(layer, self._viewer)
            image = layer.data[plane.index]
            # a numpy plane is copied (the user may edit it during the run); a lazy (dask)
            # one stays lazy: a big plane is then read tile by tile by the run
            image = np.array(image, copy=True) if isinstance(image, np.ndarray) else image
        else:
            axes = layer_axes(layer, self.axes.value)
            stack = {"axes": axes, "mode": mode}
            plane = Plane((layer.ndim - 2, layer.ndim - 1), (None,) * layer.ndim)
            data = layer.data
            # a numpy layer is copied (the user may edit it during the run); a lazy (dask)
            # one is read by the run one slice at a time
            image = np.array(data, copy=True) if isinstance(data, np.ndarray) else data
        extra = self._task_kwargs(layer, plane)
        stop = threading.Event()
        params: dict[str, Any] = {
            "task": self.task,
            "source": layer.name,
            "preset": self.preset.value,
            "steps": int(self.steps.value),
            "stop": self.stop_rule.value,
            "update_every": int(self.update_every.value),
            "seed": int(self.seed.value),
            "device": self.device.value,
            "lr": self._exact_value("lr"),
            "perturb_std": self._exact_value("perturb_std"),
            "precision": self.precision.value,
            "tv_weight": float(self.tv_weight.value),
            "tile": int(self.tile.value) or "auto",
            **self._noise_kwargs(),
        }
        snapshots = restore_steps(
            image,
            task=self.task,  # type: ignore[arg-type]
            channel_axis=-1 if layer.rgb and not stack else None,
            **stack,
            preset=params["preset"],
            steps=params["steps"],
            stop=params["stop"],
            update_every=params["update_every"],
            seed=params["seed"],
            device=params["device"],
            lr=params["lr"],
            perturb_std=params["perturb_std"],
            precision=params["precision"],
            tv_weight=params["tv_weight"],
            tile=params["tile"],
            **self._noise_kwargs(),
            should_stop=stop.is_set,
            **extra,
        )
        params |= {k: v for k, v in extra.items() if k != "mask"} | stack
        if plane.sliced_axes:
            params["slice"] = plane.position
        if stack:
            layer_dims = stack["axes"][:-1] if layer.rgb else stack["axes"]
            scale, translate = stack_transform(
                layer.scale, layer.translate, layer_dims, self._factor()
            )
        else:
            scale, translate = output_transform(layer.scale, layer.translate, plane, self._factor())
        layer_kwargs: dict[str, Any] = {
            "scale": scale,
            "translate": translate,
            "units": layer.units,
            "axis_labels": layer.axis_labels,
            "rgb": layer.rgb,
        }
        if not layer.rgb:
            layer_kwargs["colormap"] = layer.colormap
        name = f"{layer.name} [{self.suffix}]"
        # a history of whole stacks would take too much memory: single planes only
        history = self.keep_history.value and not stack
        run = _Run(layer.name, name, plane, layer_kwargs, params, stop, history)
        return snapshots, run

    # --- slots (main thread) ----------------------------------------------------------------

    def _metadata(self, run: _Run, snap: Snapshot) -> dict[str, Any]:
        stack: dict[str, Any] = {}
        if getattr(snap, "stack", None) is not None:
            # a stack run: the current slice/volume, and why each finished one stopped
            stack = {
                "piece": snap.piece,
                "pieces": snap.pieces,
                "piece_stop_reasons": list(snap.reasons),
            }
        return (
            stack
            | run.params
            | {
                "step": snap.step,
                "loss": snap.loss,
                "elapsed_s": snap.elapsed,
                "stop_reason": snap.stop_reason,
                "stopped": snap.stop_reason == "stopped on request",
                "best_step": snap.best_step,
                "score": snap.score,
            }
            | _camera_metadata(snap)
        )

    def _on_snapshot(self, snap: Snapshot) -> None:
        run = self._run
        if run is None:
            return
        run.last = snap
        self.plot.add(snap)
        layers = self._viewer.layers
        if snap.stack is not None and run.layer is not None and run.layer in layers:
            self._update_piece(run, snap)
            return
        data = place(snap.result(), run.plane)  # the chosen (best) estimate so far
        if run.layer is None or run.layer not in layers:
            name = unique_name(run.name, [lay.name for lay in layers])
            run.layer = self._viewer.add_image(
                data, name=name, metadata=self._metadata(run, snap), **run.layer_kwargs
            )
        else:
            run.layer.data = data
            run.layer.metadata = self._metadata(run, snap)
        self._set_contrast(run.layer, data)
        if run.keep_history:
            run.history.append(data)
            run.history_steps.append(snap.step)
        self._show_progress(snap)

    def _update_piece(self, run: _Run, snap: Snapshot) -> None:
        """A stack run: write the current slice/volume into the result layer in place (the
        whole stack once more at the end, so the layer ends exactly as the API's result)."""
        assert run.layer is not None and snap.index is not None
        if snap.stop_reason is not None:
            run.layer.data = snap.result()
            self._set_contrast(run.layer, run.layer.data)
        else:
            run.layer.data[snap.index] = snap.piece_result()
            run.layer.refresh()
        run.layer.metadata = self._metadata(run, snap)
        self._show_progress(snap)

    def _show_progress(self, snap: Snapshot) -> None:
        self.progress.setRange(0, snap.total_steps)
        self.progress.setValue(snap.step)
        piece = f"{snap.piece + 1}/{snap.pieces} · " if snap.pieces > 1 else ""
        tiles = getattr(snap, "tiles_total", 1)  # a big image restored in tiles
        if tiles > 1:
            piece += f"{tile_progress(snap)} · "
        self.progress.setFormat(
            f"{piece}step {snap.step}/{snap.total_steps} · loss {snap.loss:.3g} · "
            f"best {snap.best_step} · ETA {_format_seconds(snap.eta)}"
        )

    def _set_contrast(self, layer: Image, data: np.ndarray) -> None:
        """napari 0.9 no longer auto-adjusts contrast: follow the result's range."""
        if layer.rgb:
            return
        lo, hi = float(np.min(data)), float(np.max(data))
        if not hi > lo:
            hi = lo + 1.0
        layer.contrast_limits_range = (
            min(lo, layer.contrast_limits_range[0]),
            max(hi, layer.contrast_limits_range[1]),
        )
        layer.contrast_limits = (lo, hi)

    def _on_returned(self, failure: str | None) -> None:
        run = self._run
        if failure is None or run is None:
            return
        run.failure = failure
        show_error(f"Deep Image Prior: {failure}")
        if run.layer is not None and run.layer in self._viewer.layers:
            run.layer.metadata = run.layer.metadata | {"stop_reason": f"failed: {failure}"}

    def _on_finished(self) -> None:
        run, self._run, self._worker = self._run, None, None
        self._set_running(False)
        if run is None:
            return
        last = run.last
        if run.failure is not None or last is None:
            self.progress.setFormat("failed")
        else:
            # Short enough for a narrow dock; the full reason is in the tooltip and metadata.
            ended = "stopped" if last.stop_reason == "stopped on request" else "done"
            if ended == "done":  # an automatic stop ends long before the ceiling: a full bar
                self.progress.setRange(0, max(last.step, 1))
                self.progress.setValue(last.step)
            self.progress.setFormat(
                f"{ended} at step {last.step} · result from step {last.best_step} · "
                f"{_format_seconds(last.elapsed)}"
            )
            self.progress.setToolTip(last.stop_reason or "")
        if run.keep_history and run.history and run.layer is not None:
            self._add_history(run)

    def _add_history(self, run: _Run) -> None:
        kwargs = dict(run.layer_kwargs)
        kwargs["scale"] = [1.0, *kwargs["scale"]]
        kwargs["translate"] = [0.0, *kwargs["translate"]]
        kwargs["units"] = ["pixel", *kwargs["units"]]
        kwargs["axis_labels"] = ["update", *kwargs["axis_labels"]]
        name = unique_name(f"{run.name[:-1]} steps]", [lay.name for lay in self._viewer.layers])
        metadata = dict(run.layer.metadata) if run.layer is not None else {}
        metadata["history_steps"] = list(run.history_steps)
        stack = self._viewer.add_image(
            np.stack(run.history), name=name, metadata=metadata, visible=False, **kwargs
        )
        self._set_contrast(stack, stack.data)


class DenoiseWidget(RestoreWidget):
    """Remove noise from an image layer."""

    task = "denoise"
    suffix = "denoised"


class InpaintWidget(RestoreWidget):
    """Fill the pixels painted in a Labels layer (any label > 0 = missing)."""

    task = "inpaint"
    suffix = "inpainted"

    def _task_widgets(self) -> list[Widget]:
        self.mask = ComboBox(
            label="mask",
            choices=self._layers_of(Labels),
            nullable=True,
            tooltip="Labels layer: painted pixels (label > 0) are missing and get filled",
        )
        return [self.mask]

    def reset_choices(self, *_: Any) -> None:
        """Also pick the top-most Labels layer when none is chosen, e.g. one just created."""
        super().reset_choices()
        labels = [layer for layer in self._viewer.layers if isinstance(layer, Labels)]
        if self.mask.value is None and labels:
            self.mask.value = labels[-1]

    def _task_kwargs(self, image_layer: Image, plane: Plane) -> dict[str, Any]:
        mask_layer = self.mask.value
        if mask_layer is None:
            raise ValueError(
                "choose a mask: add a Labels layer (the 'new labels layer' button), paint the "
                "missing pixels and pick it as 'mask'"
            )
        if mask_layer.multiscale:
            raise ValueError(f"mask {mask_layer.name!r} is multiscale, which is not supported")
        spatial = image_layer.data.shape[: image_layer.ndim]
        data = mask_layer.data
        if mask_layer.ndim == image_layer.ndim and data.shape == spatial:
            mask = np.array(data[plane.index], copy=True)
        elif mask_layer.ndim == 2 and image_layer.ndim > 2:
            mask = np.array(data, copy=True)
        else:
            raise ValueError(
                f"mask {mask_layer.name!r} has shape {data.shape} but image "
                f"{image_layer.name!r} has shape {spatial}: they must match"
            )
        if not mask.any():
            raise ValueError(
                f"mask {mask_layer.name!r} is empty: paint the missing pixels (any label > 0)"
            )
        return {"mask": mask}


class SuperResolveWidget(RestoreWidget):
    """Upscale an image layer; the result overlays the input exactly."""

    task = "super_resolve"
    suffix = "super-resolved"

    def _task_widgets(self) -> list[Widget]:
        self.factor = SpinBox(label="factor", value=4, min=2, max=16, tooltip="upscaling factor")
        return [self.factor]

    def _task_kwargs(self, image_layer: Image, plane: Plane) -> dict[str, Any]:
        return {"factor": int(self.factor.value)}

    def _factor(self) -> int:
        return int(self.factor.value)
