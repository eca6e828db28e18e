"""The run and the estimate, off the main thread.

The dock reads the layers and the form, and calls ``make_request`` and ``make_plan``, on the
main thread (bad input is a notification at once); a napari thread worker then only iterates
:func:`~napari_dip.pipeline.run.run_jobs`. For every snapshot it also works out, still in the
worker, the array the result layer gets, and yields both as an :class:`Update`; the main thread
puts it in the layer. Back-pressure: after each update the worker waits until the main thread
has taken it (polling, so Stop and a closed viewer still end it), so updates never pile up in
Qt's queue while the fit runs ahead. A failure is returned as one clear message (the traceback
goes to the log), never raised into Qt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._arrays import to_dtype

if TYPE_CHECKING:
    from ..estimate import TimeEstimate
    from ..pipeline.plan import JobPlan
    from ..pipeline.snapshot import Snapshot

__all__ = ["Job", "Update", "failure_message", "iterate", "start_estimate", "start_run"]

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often a waiting worker looks at the stop flag


@dataclass(eq=False)
class Job:
    """One run: its plan and the flags the two threads share. ``stop``: asked to stop (Stop,
    the dock closed); ``taken``: the main thread took the last update; ``done``: the worker's
    generator has ended (its pieces' threads joined). ``rgb``: the result is an RGB layer
    (its uncertainty map is one σ per pixel)."""

    plan: JobPlan
    rgb: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    taken: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    updates: int = 0

    @property
    def stack(self) -> bool:
        return self.plan.request.stack is not None


@dataclass(frozen=True, eq=False)
class Update:
    """A snapshot and what the result layer shows for it: ``data`` is the whole result when
    ``where`` is None, else a stack's part to write at ``result[where]`` (None: nothing new to
    show, only progress). The run's last update carries ``sigma``, the uncertainty map to
    show, when the run asked for one and its ensemble gave one."""

    snap: Snapshot
    data: np.ndarray | None
    where: tuple | None = None
    sigma: np.ndarray | None = None


def _part(snap: Snapshot) -> np.ndarray | None:
    """The reporting part's chosen estimate (input dtype), also when the snapshot is the
    part's last and carries no view of it (then it is among the stack's finished parts)."""
    if snap.view is not None:
        return snap.piece_result()
    if snap.stack is not None and snap.stack.finished[snap.part] is not None:
        return to_dtype(snap.stack.finished[snap.part], snap.dtype)
    return None


def _sigma(job: Job, snap: Snapshot) -> np.ndarray | None:
    """The last snapshot's uncertainty map as the σ layer shows it: float32, the result's
    shape; for RGB the root mean square over the colours (one σ per pixel)."""
    if not job.plan.request.options.uncertainty:
        return None
    sigma = snap.uncertainty()
    if sigma is None:
        return None
    sigma = np.asarray(sigma, np.float32)
    if job.rgb and sigma.ndim >= 3:
        sigma = np.sqrt(np.mean(np.square(sigma), axis=-1)).astype(np.float32)
    return sigma


def _update(job: Job, snap: Snapshot, first: bool) -> Update:
    last = snap.stop_reason is not None
    if last:  # an image stopped before its ensemble's members all ended has no images:
        whole = job.stack or snap.view is not None  # the layer keeps the last preview
        return Update(snap, snap.result() if whole else None, sigma=_sigma(job, snap))
    if not job.stack:
        return Update(snap, snap.result() if snap.view is not None else None)
    if first:
        request = job.plan.request
        if request.lazy:  # don't read a whole lazy stack to show the parts not reached yet
            assert request.stack is not None
            shape = request.stack.out_shape(request.factor)
            return Update(snap, np.zeros(shape, snap.dtype))
        return Update(snap, snap.result())
    return Update(snap, _part(snap), snap.index)


def failure_message(err: BaseException) -> str:
    """What the user reads when a run or estimate fails."""
    text = str(err)
    if isinstance(err, RuntimeError) and "out of memory" in text.lower():
        return (  # torch.OutOfMemoryError is a RuntimeError
            "out of memory while restoring: try a smaller tile size (Advanced), the 'fast' "
            "quality or the CPU device"
        )
    if isinstance(err, ValueError | TypeError):  # bad pixels (NaN, a constant image): said
        return text
    return f"the run failed: {type(err).__name__}: {text}"


def iterate(job: Job) -> Generator[Update, None, str | None]:
    """The worker's body: walk the run, yield an update per snapshot and wait until it is
    taken; return None, or a failure message."""
    from ..pipeline.run import run_jobs

    snapshots = run_jobs([job.plan], should_stop=job.stop.is_set, previews=True)
    try:
        for snap in snapshots:
            update = _update(job, snap, first=job.updates == 0)
            job.updates += 1
            job.taken.clear()
            yield update
            while not job.taken.wait(POLL_S) and not job.stop.is_set():
                pass
    except Exception as err:
        log.error("Deep Image Prior run failed", exc_info=True)
        return failure_message(err)
    finally:
        snapshots.close()  # stops and joins pieces still running (a closed dock)
        job.done.set()
    return None


def _drive(body: Generator[Update, None, str | None]) -> Generator[Update, None, str | None]:
    return (yield from body)


def start_run(
    job: Job,
    on_update: Callable[[Update], None],
    on_returned: Callable[[str | None], None],
    on_finished: Callable[[], None],
) -> Any:
    """Start ``job`` in a napari thread worker; the slots run on the main thread. The body is
    closed when the worker ends (also when napari quit it between two updates)."""
    from napari.qt.threading import create_worker

    body = iterate(job)
    worker = create_worker(_drive, body, _start_thread=False)
    worker.yielded.connect(on_update)
    worker.returned.connect(on_returned)
    worker.finished.connect(on_finished)
    worker.finished.connect(body.close)
    worker.start()
    return worker


def _time_run(kwargs: dict[str, Any]) -> TimeEstimate | str:
    """The estimate worker's body: time a few steps (see :func:`napari_dip.estimate_time`);
    a failure is returned as a message."""
    from ..estimate import estimate_time

    try:
        return estimate_time(**kwargs)
    except Exception as err:
        log.error("Deep Image Prior time estimate failed", exc_info=True)
        return failure_message(err).replace("the run failed", "the estimate failed")


def start_estimate(
    kwargs: dict[str, Any],
    on_returned: Callable[[TimeEstimate | str], None],
    on_finished: Callable[[], None],
) -> Any:
    from napari.qt.threading import create_worker

    worker = create_worker(_time_run, kwargs, _start_thread=False)
    worker.returned.connect(on_returned)
    worker.finished.connect(on_finished)
    worker.start()
    return worker
