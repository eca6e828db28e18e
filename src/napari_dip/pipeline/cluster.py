"""Pieces as tasks on a Dask cluster (``distributed``): a local one started for the run, or
an existing scheduler.

Each piece is one task, fitted to its end on a worker with one torch thread (unless told
otherwise) and sent back whole; a task that raises is retried, a worker that dies has its
task rerun elsewhere by the scheduler, and what still fails is reported, never skipped. Tasks
are submitted as workers free up, so a folder of files is read as the run goes, not up front.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from .executors import Event
from .fitting import PieceTask, fit_piece_to_end

__all__ = ["DaskExecutor", "connect"]


def connect(cluster: str | None = None, scheduler: str | None = None) -> tuple[Any, Callable]:
    """A ``distributed.Client`` and the function that closes what was started for it.

    ``cluster="local"`` or ``"local:N"`` starts a ``LocalCluster`` of N worker processes (all
    cores by default) with one thread each; ``scheduler`` (or the ``DASK_SCHEDULER_ADDRESS``
    environment variable) connects to a running scheduler, e.g. ``tcp://host:8786``.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError(
            "running on a Dask cluster needs the 'distributed' package: "
            "pip install 'napari-dip[cluster]'"
        ) from None
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if cluster is not None:
        kind, _, count = cluster.partition(":")
        if kind != "local" or (count and not count.isdigit()) or count == "0":
            raise ValueError(f"cluster must be 'local' or 'local:N' (N >= 1), got {cluster!r}")
        workers = int(count) if count else os.cpu_count() or 1
        local = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"OMP_NUM_THREADS": "1"},
        )
        client = Client(local)

        def close() -> None:
            client.close()
            local.close()

        return client, close
    if address is None:
        raise ValueError("give a cluster ('local[:N]') or a scheduler address")
    client = Client(address)
    return client, client.close


class DaskExecutor:
    """Fit pieces as Dask tasks on ``client``'s workers.

    ``threads``: torch threads per piece on a worker (1: a worker process per core is the
    usual layout). ``retries``: how often a task that raised is tried again. At most
    ``in_flight`` tasks are submitted at once (default: twice the workers' threads), so inputs
    are read as room frees up. Results come back as they finish; the run assembles them in
    plan order.
    """

    def __init__(
        self, client: Any, *, threads: int = 1, retries: int = 1, in_flight: int | None = None
    ) -> None:
        self.client = client
        self.threads = threads
        self.retries = retries
        self.in_flight = in_flight

    def _limit(self) -> int:
        if self.in_flight is not None:
            return self.in_flight
        info = self.client.scheduler_info()
        slots = sum(w.get("nthreads", 1) for w in info.get("workers", {}).values())
        return max(2, 2 * slots)

    def run(self, tasks: Iterator[PieceTask], halt: Callable[[], bool]) -> Iterator[Event]:
        from distributed import as_completed

        limit = self._limit()
        futures: dict[Any, Any] = {}
        done = as_completed()
        exhausted = False

        def submit() -> None:
            nonlocal exhausted
            while len(futures) < limit and not exhausted and not halt():
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                    return
                task = replace(task, threads=task.threads or self.threads)
                future = self.client.submit(
                    fit_piece_to_end, task, pure=False, retries=self.retries
                )
                futures[future] = task.piece
                done.add(future)

        try:
            submit()
            while futures:
                future = next(done)
                piece = futures.pop(future)
                try:
                    snapshot = future.result()
                except Exception as error:
                    yield Event(piece, error=error)
                else:
                    yield Event(piece, snapshot)
                if halt():
                    break
                submit()
        finally:
            if futures:  # stopped: what is still running is dropped
                self.client.cancel(list(futures))
