"""The run: jobs' pieces through an executor, events back into parts, snapshots out.

:func:`run_jobs` drives one or many jobs (a request; a batch's files) through one executor, so
pieces of the next file start as soon as a worker is free. Parts are read and normalised
lazily, on the consuming thread, just before their first piece is handed over; results are
assembled in plan order whatever order pieces finish in. A piece that fails is reported (in
the job's last snapshot), the rest go on; a run asked to stop ends its running pieces with
their best so far.
"""

from __future__ import annotations

import copy
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from .._arrays import ConstantImageError
from .assembly import Mosaic, shown_input
from .executors import Event, Executor, InProcess
from .fitting import PieceTask, WarmSlot
from .job import JobState
from .plan import JobPlan, Piece
from .prepare import prepare_part, tile_input
from .snapshot import Snapshot

__all__ = ["RestorationError", "run_jobs"]


class RestorationError(RuntimeError):
    """Some pieces of a run failed. ``result`` holds what was restored (the input where the
    failed pieces lie); ``failures`` says which and why."""

    def __init__(self, message: str, result: object, failures: tuple[str, ...]) -> None:
        super().__init__(message)
        self.result = result
        self.failures = failures


def _tasks(
    plans: Iterable[JobPlan],
    jobs: dict[int, JobState],
    halt: Callable[[], bool],
    previews: bool,
    fail_fast: bool,
    warm_ok: bool = False,
) -> Iterator[PieceTask]:
    """Every piece of every job, in plan order, each read when the executor asks for it.

    With ``warm_start`` (and ``warm_ok``: an executor in this process), a piece of part k
    starts from the prior its counterpart (same tile and member) in the part before it ended
    with, handed over in a :class:`.fitting.WarmSlot`. On a Dask cluster the parts run at once,
    each from scratch."""
    for plan in plans:
        job = jobs[plan.number] = JobState(plan, previews)
        request = plan.request
        warm = warm_ok and request.options.warm_start and len(plan.parts) > 1
        slots: dict[tuple[int | None, int], WarmSlot] = {}  # (tile, member): the last hand-over
        for k in range(len(plan.parts)):
            if halt():
                return
            try:
                data = prepare_part(plan, k)
            except ConstantImageError as err:
                if request.stack is not None:  # an empty frame of a stack: kept as it is
                    job.keep(k, f"{job.noun} {k}: not restored ({err})")
                    continue
                if fail_fast:
                    raise
                job.fail(k, None, err)
                continue
            except (ValueError, TypeError) as err:
                if fail_fast and (request.stack is None or not job.prepared):
                    raise
                job.fail(k, None, err)
                continue
            mosaic = None
            if plan.tiles is not None:
                shown = None
                if plan.tiles.factor == 1:
                    shown = shown_input(
                        data.source, data.channel_axis, data.known, *data.value_range
                    )
                channels = 1 if data.channel_axis is None else data.source.shape[data.channel_axis]
                mosaic = Mosaic(plan.tiles, channels, shown)
            job.prepare(k, data, mosaic)
            for piece in plan.pieces_of(k):
                if halt():
                    return
                if piece.tile is None:
                    unit, known = data.unit, data.known
                elif piece.member == 0:  # a tile is read once for all its members
                    region = job.mosaics[k].regions[piece.tile]
                    unit, known = tile_input(data, region, job.warned, f"tile {piece.tile + 1}")
                    job.mosaics[k].show(piece.tile, unit)
                job.started += 1
                start = hand_over = None
                if warm:
                    key = (piece.tile, piece.member)
                    start = slots.pop(key, None)
                    if k < len(plan.parts) - 1:
                        hand_over = slots[key] = WarmSlot()
                yield PieceTask(
                    piece=piece,
                    unit=unit,
                    known=known,
                    factor=request.factor,
                    preset=plan.preset,
                    settings=plan.settings,
                    perturb_std=plan.perturb_std,
                    tv_weight=request.options.tv_weight,
                    device=plan.device,
                    noise=data.noise,
                    rule=copy.deepcopy(plan.rule),  # pieces may run at once: each its own
                    threads=plan.threads,
                    fit_state=request.fit_state,
                    psf=plan.psf,
                    start=start,
                    hand_over=hand_over,
                    fuse=request.options.fuse,
                )
        job.issued = True
        if not job.prepared and request.stack is not None and not job.failures:
            raise ConstantImageError(
                f"every {job.noun} of the image is constant: nothing to restore"
            )


def run_jobs(
    plans: Iterable[JobPlan],
    executor: Executor | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
    previews: bool = True,
    fail_fast: bool = True,
) -> Iterator[Snapshot]:
    """Run every job of ``plans`` (an iterator is consumed lazily) through ``executor``
    (default: in this process, ``workers`` of the first plan at once), yielding a
    :class:`Snapshot` per piece report; each job's last snapshot has ``stop_reason`` set.

    ``previews``: snapshots before a job's last carry images (for live display); without,
    only the last does, and nothing is copied for the others. ``fail_fast``: a part that
    cannot be prepared before any part of its job could, or a job of which nothing could be
    restored, raises (the API's behaviour for bad input); otherwise failures are reported in
    the job's last snapshot and the run goes on (a batch).
    """
    plans = iter(plans)
    first = next(plans, None)
    if first is None:
        return
    executor = executor or InProcess(first.workers, first.threads)
    jobs: dict[int, JobState] = {}
    announced: set[int] = set()
    stop_seen = threading.Event()  # once asked to stop, no piece starts any more

    def halt() -> bool:
        if not stop_seen.is_set() and should_stop is not None and should_stop():
            stop_seen.set()
        return stop_seen.is_set()

    def chain() -> Iterator[JobPlan]:
        yield first
        yield from plans

    def finished_jobs() -> Iterator[Snapshot]:
        for number, job in list(jobs.items()):
            if number not in announced and job.complete:
                announced.add(number)
                again = _retry(job, should_stop, previews, fail_fast)
                if again is not None:
                    yield from again
                else:
                    yield _last(job, stop_seen.is_set(), fail_fast)
                del jobs[number]

    warm_ok = getattr(executor, "in_process", False)  # hand-overs need one process
    events = executor.run(_tasks(chain(), jobs, halt, previews, fail_fast, warm_ok), halt)
    try:
        for event in events:
            job = jobs[event.piece.job]
            snap = _handle(job, event)
            if snap is not None and not job.complete:
                yield snap
            yield from finished_jobs()
        yield from finished_jobs()
    finally:
        events.close()
    for number in sorted(set(jobs) - announced):  # stopped before every piece ran
        yield _last(jobs[number], True, fail_fast)


def _out_of_memory(error: BaseException) -> bool:
    import torch

    kind = getattr(torch, "OutOfMemoryError", ())
    return isinstance(error, kind) or "out of memory" in str(error).lower()


def _smaller(plan: JobPlan) -> tuple[JobPlan, str] | None:
    """The plan again with half-size tiles (or tiles at all), or on the CPU: what is tried
    when a piece ran out of memory. None when nothing smaller is left."""
    from .plan import make_plan

    request, options = plan.request, plan.request.options
    stack = request.stack
    side = None
    if plan.tiles is not None:
        side = plan.tiles.tile // 2
    elif stack is None or stack.mode == "slices":
        shape = (stack.size("Y"), stack.size("X")) if stack is not None else request.image.shape
        spatial = [n for i, n in enumerate(shape) if stack is not None or i != request.channel_axis]
        side = max(spatial[:2]) // 2
    if side is not None and side >= 32:
        new = make_plan(replace(request, options=options.replace(tile=side)), plan.number)
        return new, f"out of memory: retried in tiles of {side} px"
    if plan.device.type != "cpu":
        new = make_plan(replace(request, options=options.replace(device="cpu")), plan.number)
        return new, f"out of memory on {plan.device}: retried on the CPU"
    return None


def _retry(
    job: JobState, should_stop: Callable[[], bool] | None, previews: bool, fail_fast: bool
) -> Iterator[Snapshot] | None:
    """Snapshots of the job run again smaller when one of its pieces ran out of memory."""
    if not any(_out_of_memory(e) for e in job.errors):
        return None
    smaller = _smaller(job.plan)
    if smaller is None:
        return None
    plan, note = smaller
    warnings.warn(f"napari-dip: {note}", RuntimeWarning, stacklevel=3)
    again = run_jobs(
        [plan],
        InProcess(plan.workers, plan.threads),
        should_stop=should_stop,
        previews=previews,
        fail_fast=fail_fast,
    )
    return (replace(snap, notes=(note, *snap.notes)) for snap in again)


def _handle(job: JobState, event: Event) -> Snapshot | None:
    """Record ``event`` in its job; the snapshot to show for it (None: nothing to show)."""
    piece: Piece = event.piece
    if event.error is not None:
        job.fail(piece.part, piece, event.error)
        return None
    snap = event.snapshot
    assert snap is not None
    if snap.stop_reason is None:
        job.running[piece] = snap
        return job.snapshot(piece, snap)
    job.finish(piece, snap)
    if snap.stop_reason == "stopped on request":
        return None
    return job.snapshot(piece, snap)


def _last(job: JobState, stopped: bool, fail_fast: bool) -> Snapshot:
    """A job's last snapshot; raises when nothing could be restored and ``fail_fast``."""
    if fail_fast and job.failures and not job.restored:
        raise job.errors[0]
    return job.last(stopped)
