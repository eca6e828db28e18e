"""``napari-dip batch TASK IN... -o OUTDIR``: many files through one executor."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..files import find_inputs
from ..pipeline.snapshot import Snapshot, progress_text
from .commands import EXIT_ERROR, EXIT_INTERRUPTED, CliError, psf_of, say
from .parser import PROG, TASK_COMMANDS, run_options
from .progress import BAR_TOTAL, StopOnCtrlC

__all__ = ["cmd_batch"]


def _mask_finder(args: argparse.Namespace) -> Any:
    suffix = getattr(args, "mask_suffix", None)
    if suffix is None:
        return getattr(args, "mask", None)

    def beside(source: Path) -> Path:
        name = source.name
        stem, dot, ext = name.partition(".")
        return source.with_name(f"{stem}{suffix}{dot}{ext}")

    return beside


def _executor(args: argparse.Namespace) -> tuple[Any, Any]:
    """The executor the options ask for, and what closes it."""
    scheduler = args.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if args.cluster is None and scheduler is None:
        import torch

        from ..pipeline.executors import InProcess

        threads = torch.get_num_threads()
        workers = threads if args.workers == "auto" else int(args.workers)
        return InProcess(workers, max(1, threads // workers)), lambda: None
    from ..pipeline.cluster import DaskExecutor, connect

    try:
        client, close = connect(args.cluster, scheduler)
    except (ValueError, OSError) as err:
        raise CliError(str(err)) from None
    threads = 1 if args.workers == "auto" else int(args.workers)
    return DaskExecutor(client, threads=threads), close


def cmd_batch(args: argparse.Namespace) -> int:
    """Restore every input into the output folder; non-zero if any file failed."""
    from tqdm import tqdm

    from ..batch import run_batch

    task = TASK_COMMANDS[args.task]
    inputs = find_inputs(args.inputs)
    suffix = getattr(args, "mask_suffix", None)
    if suffix:  # the masks lie beside the images: they are not inputs
        inputs = [p for p in inputs if not p.name.partition(".")[0].endswith(suffix)]
    if not inputs:
        raise CliError("no input files found")
    options = run_options(args)
    options.pop("workers")  # where pieces run is the executor's choice here
    say(args, f"{len(inputs)} files -> {args.output}")
    executor, close = _executor(args)
    fractions: dict[int, float] = {}
    bar = tqdm(
        total=BAR_TOTAL,
        desc="batch",
        file=sys.stderr,
        disable=args.quiet,
        dynamic_ncols=True,
        mininterval=0,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
    )

    def progress(snap: Snapshot, number: int, total: int) -> None:
        fractions[number] = snap.progress
        done = sum(fractions.values()) / total
        bar.set_postfix_str(f"file {number + 1}/{total} · {progress_text(snap)}", refresh=False)
        bar.update(round(done * BAR_TOTAL) - bar.n)

    stop = StopOnCtrlC(PROG)
    try:
        with stop, bar:
            outcomes = run_batch(
                inputs,
                args.output,
                task=task,
                mask=_mask_finder(args),
                executor=executor,
                should_stop=stop,
                progress=progress,
                overwrite=args.overwrite,
                axes=args.axes,
                mode=args.mode,
                channel_axis=args.channel_axis,
                factor=getattr(args, "factor", None),
                psf=psf_of(args),
                options=options,
            )
    finally:
        close()
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    for outcome in outcomes:
        if outcome.status == "failed":
            print(f"{PROG}: error: {outcome.source}: {outcome.reason}", file=sys.stderr)
    say(
        args,
        f"{counts['done']} done, {counts['skipped']} skipped (output exists), "
        f"{counts['failed']} failed; log: {args.output / 'napari-dip-batch.jsonl'}",
    )
    if stop.requested:
        return EXIT_INTERRUPTED
    return EXIT_ERROR if counts["failed"] else 0
