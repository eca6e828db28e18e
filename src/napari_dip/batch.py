"""Many files, one run: every file's pieces through one executor, each output written as soon
as its file is done.

Outputs are written atomically (a temporary file renamed), so an output that exists is a
finished one: a rerun skips it (the batch is resumable). A file that cannot be read, planned
or fully restored is reported and left unwritten; the others go on. Every piece and file is
logged as a JSON line (file, piece, steps, stop reason, seconds).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import WORDS, FileJob, default_output, open_file_job
from .io import ImageFileError
from .pipeline.executors import Executor, InProcess
from .pipeline.plan import JobPlan, make_plan
from .pipeline.run import run_jobs
from .pipeline.snapshot import Snapshot

__all__ = ["LOG_NAME", "FileOutcome", "run_batch"]

LOG_NAME = "napari-dip-batch.jsonl"


@dataclass(frozen=True)
class FileOutcome:
    """What became of one input: ``status`` is ``"done"``, ``"skipped"`` (its output existed)
    or ``"failed"`` (``reason`` says why)."""

    source: Path
    output: Path
    status: str
    reason: str = ""
    steps: int = 0
    seconds: float = 0.0


class _Log:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, **entry: Any) -> None:
        if self.path is None:
            return
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **entry}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, default=str) + "\n")


def _piece_name(snap: Snapshot) -> str:
    words = []
    if snap.parts > 1:
        words.append(f"part {snap.part + 1}/{snap.parts}")
    if snap.tiles > 1:
        words.append(f"tile {(snap.tile or 0) + 1}/{snap.tiles}")
    return " ".join(words) or "whole"


def run_batch(
    inputs: Sequence[Path],
    folder: Path,
    *,
    task: str = "denoise",
    mask: Callable[[Path], Path] | Path | None = None,
    executor: Executor | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[Snapshot, int, int], None] | None = None,
    log: bool = True,
    overwrite: bool = False,
    **file_options: Any,
) -> list[FileOutcome]:
    """Restore every file of ``inputs`` into ``folder``; return what became of each.

    ``mask`` (inpainting) is one mask file for all inputs or a function giving each input's;
    ``file_options`` go to :func:`~napari_dip.files.open_file_job` (``axes``, ``mode``,
    ``channel_axis``, ``factor``, ``psf``, ``options`` — the run options). ``progress`` is
    called with every snapshot, the file's number and the number of files.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from napari_dip import samples
    >>> from napari_dip.io import write_image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(folder / "cells.png", samples.noisy(sigma=25, size=32)[0])
    >>> run = {"steps": 10, "stop": "none"}
    >>> done = run_batch([folder / "cells.png"], folder / "out", options=run)
    >>> [(o.output.name, o.status, o.steps) for o in done]
    [('cells_denoised.png', 'done', 10)]
    >>> run_batch([folder / "cells.png"], folder / "out")[0].status  # done already: resumable
    'skipped'
    """
    folder.mkdir(parents=True, exist_ok=True)
    record = _Log(folder / LOG_NAME if log else None)
    word = WORDS[task]
    outcomes: dict[int, FileOutcome] = {}
    opened: dict[int, FileJob] = {}
    started: dict[int, float] = {}

    def plans() -> Iterator[JobPlan]:
        for number, source in enumerate(inputs):
            output = default_output(source, word, folder)
            if output.exists() and not overwrite:
                outcomes[number] = FileOutcome(source, output, "skipped", "output exists")
                record.write(file=str(source), output=str(output), event="skipped")
                continue
            started[number] = time.perf_counter()
            try:
                masks = mask(source) if callable(mask) else mask
                job = open_file_job(source, output, task=task, mask=masks, **file_options)
                plan = make_plan(job.request, number)
            except (ImageFileError, ValueError, TypeError, OSError) as err:
                outcomes[number] = FileOutcome(source, output, "failed", str(err))
                record.write(file=str(source), event="failed", reason=str(err))
                continue
            opened[number] = job
            yield plan

    total = len(inputs)
    snapshots = run_jobs(
        plans(),
        executor or InProcess(1),
        should_stop=should_stop,
        previews=False,
        fail_fast=False,
    )
    for snap in snapshots:
        job = opened[snap.job]
        if progress is not None:
            progress(snap, snap.job, total)
        if snap.piece_stop_reason is not None:
            record.write(
                file=str(job.source),
                event="piece",
                piece=_piece_name(snap),
                steps=snap.piece_step,
                stop_reason=snap.piece_stop_reason,
                seconds=round(snap.piece_elapsed, 3),
            )
        if snap.stop_reason is None:
            continue
        seconds = time.perf_counter() - started[snap.job]
        outcomes[snap.job] = _finish(job, snap, seconds, record)
        del opened[snap.job]
    for number in sorted(opened):  # stopped before it ran
        job = opened[number]
        outcomes[number] = FileOutcome(job.source, job.output, "failed", "stopped on request")
        record.write(file=str(job.source), event="failed", reason="stopped on request")
    return [outcomes[k] for k in sorted(outcomes)]


def _finish(job: FileJob, snap: Snapshot, seconds: float, record: _Log) -> FileOutcome:
    """Write a finished file's result, or report why it is not written."""
    reason = snap.stop_reason or ""
    if snap.failures or reason == "stopped on request":
        record.write(file=str(job.source), event="failed", reason=reason, seconds=seconds)
        return FileOutcome(job.source, job.output, "failed", reason, snap.step, seconds)
    try:
        job.write(snap.result(), snap.uncertainty())
    except ImageFileError as err:
        record.write(file=str(job.source), event="failed", reason=str(err), seconds=seconds)
        return FileOutcome(job.source, job.output, "failed", str(err), snap.step, seconds)
    record.write(
        file=str(job.source),
        output=str(job.output),
        event="done",
        steps=snap.step,
        stop_reason=reason,
        seconds=round(seconds, 3),
    )
    return FileOutcome(job.source, job.output, "done", reason, snap.step, seconds)
