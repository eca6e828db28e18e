"""The shared dock: the form (:mod:`.form`), the run panel (:mod:`.panel`), Run, Stop and
Estimate; each task's dock (:mod:`.docks`) adds its own inputs, result name and defaults.

Threading: every layer and control is read, and ``make_request``/``make_plan`` called, on the
main thread (:mod:`.inputs`); a thread worker runs the plan (:mod:`.worker`); every layer
change happens in slots that run on the main thread (:mod:`.results`). Closing the dock (or
the viewer, or quitting napari) stops its run; a slot that comes after that touches nothing.
Ctrl+Return runs and Escape stops while the focus is in the dock.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from magicgui.widgets import Widget as MagicWidget
from napari.layers import Image
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import QApplication, QVBoxLayout, QWidget

from .estimating import VOLUME, Estimates
from .form import Form
from .inputs import Source, estimate_args, layer_geometry, read_source, run_params
from .panel import RUN_KEYS, STOP_KEY, RunPanel
from .results import ResultLayer
from .worker import Job, Update, start_run

if TYPE_CHECKING:
    import napari

    from ..pipeline.plan import JobPlan

__all__ = ["RestoreWidget"]

log = logging.getLogger(__name__)


class RestoreWidget(QWidget):
    """The shared dock; subclasses set the task and add its inputs."""

    task: ClassVar[str] = "denoise"
    suffix: ClassVar[str] = "denoised"

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._viewer = viewer
        self._job: Job | None = None
        self._result: ResultLayer | None = None
        self._failure: str | None = None
        self._noun = "slice"
        self._worker: Any = None
        self._closed = False
        self._watched: Any = None  # the image layer whose data changes are watched

        self.form = Form(self._layers_of, self.task, self._task_widgets(), self._task_advanced())
        self.panel = p = RunPanel()
        self.run_button, self.stop_button = p.run_button, p.stop_button
        self.estimate_button, self.estimate_label = p.estimate_button, p.estimate_label
        self.progress, self.plot = p.progress, p.plot
        self._estimates = Estimates(self.estimate_label, lambda: self._set_busy(False))
        layout = QVBoxLayout(self)
        for part in (self.form.first.native, self.panel, self.form.advanced):
            layout.addWidget(part)
        layout.addStretch(1)

        context = Qt.ShortcutContext.WidgetWithChildrenShortcut  # only with focus in the dock
        self.shortcuts = [
            QShortcut(QKeySequence(key), self, self.run, context=context) for key in RUN_KEYS
        ]
        self.shortcuts.append(QShortcut(QKeySequence(STOP_KEY), self, self.stop, context=context))
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop)
        self.estimate_button.clicked.connect(self.estimate)
        self.form.connect_changed(self._settings_changed)
        self.form.image.changed.connect(self._watch_image)
        self.reset_choices()
        self._pick_image()
        # the dock (or the viewer) closed: a plain callable, as Qt calls no slot of a widget
        # being destroyed
        self.destroyed.connect(functools.partial(RestoreWidget._stop_job, self))
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._stop_job)

    # --- task hooks -----------------------------------------------------------------------------

    def _task_widgets(self) -> list[MagicWidget]:
        """The task's inputs on the first screen, under the image."""
        return []

    def _task_advanced(self) -> list[MagicWidget]:
        """The task's inputs at the top of Advanced."""
        return []

    def _task_inputs(self, source: Source) -> dict[str, Any]:
        """Extra ``make_request`` arguments, read (a mask: copied) on the main thread."""
        return {}

    def _task_params(self, plan: JobPlan) -> dict[str, Any]:
        """Extra entries of the result layer's metadata, once the run is planned."""
        return {}

    # --- state ----------------------------------------------------------------------------------

    def _layers_of(self, kind: type) -> Any:
        def choices(_widget: Any) -> list[tuple[str, Any]]:
            return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, kind)]

        return choices

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists; napari calls this when layers change."""
        self.form.reset_choices()

    def _pick_image(self) -> None:
        """Start on the selected image layer if it is shown, else the top-most shown one (a
        sample's hidden clean image is not what to restore)."""
        active = self._viewer.layers.selection.active
        images = [layer for layer in self._viewer.layers if isinstance(layer, Image)]
        shown = [layer for layer in images if layer.visible]
        if isinstance(active, Image) and active.visible:
            self.form.image.value = active
        elif shown or images:
            self.form.image.value = (shown or images)[-1]
        self._watch_image(self.form.image.value)

    def _watch_image(self, layer: Any) -> None:
        """Follow the chosen layer's data: a replaced array (maybe another shape) makes the
        estimate stale and may show or hide the stack controls."""
        if self._watched is not None:
            self._watched.events.data.disconnect(self._data_changed)
        self._watched = layer
        if layer is not None:
            layer.events.data.connect(self._data_changed)
        self.form.show_stack(layer)

    def _data_changed(self, *_: Any) -> None:
        if self._closed:
            return
        self.form.show_stack(self._watched)
        self._settings_changed()

    @property
    def running(self) -> bool:
        return self._job is not None

    @property
    def estimating(self) -> bool:
        return self._estimates.running

    def _set_busy(self, busy: bool, running: bool = False) -> None:
        """Controls off while busy; the focus stays in the dock (on Stop, then on Run), so
        the keys keep working."""
        if self._closed:
            return
        focused = QApplication.focusWidget()
        inside = focused is not None and (focused is self or self.isAncestorOf(focused))
        self.panel.set_busy(busy, running)
        self.form.set_enabled(not busy)
        if inside:
            (self.stop_button if running else self.run_button).setFocus()

    def _settings_changed(self, *_: Any) -> None:
        self._estimates.settings_changed()

    def _refuse(self, err: Exception, what: str) -> None:
        if not isinstance(err, ValueError | TypeError):
            log.exception("could not %s", what)
        show_error(f"Deep Image Prior: {err}")

    def _plan(self, source: Source) -> JobPlan:
        """The run's checked request and plan (main thread: bad input raises now)."""
        from ..pipeline.plan import make_plan
        from ..pipeline.request import make_request

        request = make_request(
            source.image,
            task=self.task,
            name=source.layer.name,
            **source.request_args(),
            **self._task_inputs(source),
            **self.form.run_options(),
        )
        return make_plan(request)

    # --- run ------------------------------------------------------------------------------------

    def run(self) -> None:
        """Restore the chosen layer; bad input becomes an error notification at once."""
        if self.running or self.estimating or self._closed:
            return
        try:
            source = read_source(self._viewer, self.form)
            plan = self._plan(source)
        except Exception as err:  # a plain message: the viewer stays usable
            self._refuse(err, "start the restoration")
            return
        self._result = ResultLayer(
            self._viewer,
            f"{source.layer.name} [{self.suffix}]",
            source.plane,
            layer_geometry(source, plan.request.factor),
            run_params(plan, source, self.form.quality.value) | self._task_params(plan),
            bool(self.form.keep_history.value) and not source.stack,
        )
        self._noun, self._failure = source.noun, None
        self._job = job = Job(plan, rgb=bool(source.layer.rgb))
        self._set_busy(True, running=True)
        self.panel.started()
        self._worker = start_run(job, self._on_update, self._on_returned, self._on_finished)

    def stop(self) -> None:
        """Stop after the current step; the run still delivers its result so far."""
        if self._job is not None and not self._job.stop.is_set():
            self._job.stop.set()
            self.panel.stopping()

    def _stop_job(self, *_: Any) -> None:
        """The dock (or the viewer) closed, or napari quits: stop the run, and let the slots
        still to come touch nothing."""
        self._closed = True
        if self._job is not None:
            self._job.stop.set()
        self._estimates.closed()
        if self._watched is not None:
            self._watched.events.data.disconnect(self._data_changed)
            self._watched = None

    def _on_update(self, update: Update) -> None:
        job = self._job
        try:
            if job is not None and self._result is not None and not self._closed:
                self._result.show(update)
                self.panel.show_snapshot(update.snap, self._noun, job.stop.is_set())
        finally:
            if job is not None:
                job.taken.set()  # the worker may go on

    def _on_returned(self, failure: str | None) -> None:
        if failure is None or self._result is None or self._closed:
            return
        self._failure = failure
        show_error(f"Deep Image Prior: {failure}")
        self._result.fail(failure)

    def _on_finished(self) -> None:
        result, failure = self._result, self._failure
        self._job = self._worker = self._result = None
        if self._closed:
            return
        self._set_busy(False)
        last = None if result is None else result.last
        self.panel.ended(last, self._noun, failure is not None)
        if failure is None and last is not None and last.failures:
            show_warning(f"Deep Image Prior: {last.stop_reason}")
        if result is not None and failure is None:
            result.finish()
            if result.missing_uncertainty:
                show_info(f"Deep Image Prior: {result.missing_uncertainty}")

    # --- estimate -------------------------------------------------------------------------------

    def estimate(self) -> None:
        """Say how long the run would take: a few steps timed in a worker (a few seconds).
        The run's request and plan are made first: what a run would refuse is refused now."""
        if self.running or self.estimating or self._closed:
            return
        try:
            plan = self._plan(read_source(self._viewer, self.form))
            kwargs, slices = estimate_args(plan, self.form.run_options())
        except Exception as err:
            self._estimates.show("")
            self._refuse(err, "estimate the run time")
            return
        if kwargs is None:
            self._estimates.show(VOLUME)
            return
        self._set_busy(True)
        self._estimates.start(kwargs, slices, plan.members)
