"""Executors: where pieces are fitted. In this process, one after the other or side by side on
threads (the default); :mod:`.cluster` runs them on a Dask cluster.

An executor pulls :class:`~.fitting.PieceTask` s from an iterator when it has room for one
(so a piece's input is read only when it is about to run) and streams :class:`Event` s back:
the piece's snapshots as they come, its last one (``stop_reason`` set), or its error. It never
decides what a failure means; the run does.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

from .fitting import PieceSnapshot, PieceTask, fit_piece
from .plan import Piece

__all__ = ["Event", "Executor", "InProcess"]


@dataclass(frozen=True, eq=False)
class Event:
    """What became of a piece: a snapshot (its last has ``stop_reason``), or an error."""

    piece: Piece
    snapshot: PieceSnapshot | None = None
    error: BaseException | None = None

    @property
    def final(self) -> bool:
        return self.snapshot is None or self.snapshot.stop_reason is not None


class Executor(Protocol):
    def run(self, tasks: Iterator[PieceTask], halt: Callable[[], bool]) -> Iterator[Event]:
        """Fit the tasks as room frees up, until they run out or ``halt()`` turns true (then
        the running pieces are stopped and report their last snapshot)."""
        ...


class InProcess:
    """Fit ``workers`` pieces at once in this process: one (``workers=1``) on the thread that
    iterates the events, or several, each on a thread of its own with ``threads`` torch
    threads (None: what each task says).

    Side by side, pieces start in plan order as threads free up; the event queue is bounded,
    so fits wait for a consumer that does not read instead of piling up snapshots; closing the
    event stream stops the running pieces within a step and joins their threads.
    """

    in_process = True  # pieces share memory: a fit can hand its prior to the next (warm start)

    def __init__(self, workers: int = 1, threads: int | None = None) -> None:
        self.workers = max(1, int(workers))
        self.threads = threads  # torch threads per piece (None: each task's own)

    def run(self, tasks: Iterator[PieceTask], halt: Callable[[], bool]) -> Iterator[Event]:
        if self.threads is not None:
            tasks = (replace(task, threads=self.threads) for task in tasks)
        if self.workers <= 1:
            return self._in_turn(tasks, halt)
        return self._side_by_side(tasks, halt)

    @staticmethod
    def _in_turn(tasks: Iterator[PieceTask], halt: Callable[[], bool]) -> Iterator[Event]:
        while not halt():
            task = next(tasks, None)
            if task is None:
                return
            run = fit_piece(task, halt)
            try:
                for snap in run:
                    yield Event(task.piece, snap)
            except Exception as error:
                yield Event(task.piece, error=error)
            finally:
                run.close()  # frees the piece's network before the next one is built

    def _side_by_side(
        self, tasks: Iterator[PieceTask], halt: Callable[[], bool]
    ) -> Iterator[Event]:
        cancel = threading.Event()

        def stop() -> bool:
            return cancel.is_set() or halt()

        events: queue.Queue = queue.Queue(maxsize=4 * self.workers)
        done = object()

        def work(task: PieceTask) -> None:
            run = fit_piece(task, stop)
            try:
                for snap in run:
                    events.put(Event(task.piece, snap))
            except Exception as error:  # handed to the consumer's thread
                events.put(Event(task.piece, error=error))
            finally:
                run.close()
                events.put((done, task.piece))

        threads: dict[Piece, threading.Thread] = {}
        exhausted = False
        try:
            while True:
                while len(threads) < self.workers and not exhausted and not stop():
                    task = next(tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    name = f"napari-dip piece {task.piece.part + 1}.{(task.piece.tile or 0) + 1}"
                    thread = threading.Thread(target=work, args=(task,), name=name)
                    threads[task.piece] = thread
                    thread.start()
                if not threads:
                    return
                item = events.get()
                if isinstance(item, tuple) and item[0] is done:
                    threads.pop(item[1]).join()
                    continue
                yield item
        finally:
            cancel.set()
            while threads:  # let the running fits end (within a step) and their threads finish
                item = events.get()
                if isinstance(item, tuple) and item[0] is done:
                    threads.pop(item[1]).join()
