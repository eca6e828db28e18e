"""Scores, timing, peak memory and result tables shared by the benchmarks.

PSNR and SSIM need the right ``data_range``: scikit-image guesses it from the dtype, which is
wrong for float images (−1..1) and for uint16 camera data that uses a small part of 0..65535,
so it is always passed explicitly here. Peak memory is measured in a fresh interpreter so that
one call's figure is not hidden by whatever ran earlier in the same process.
"""

from __future__ import annotations

import collections
import datetime
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["dynamic_range", "peak_memory_mb", "psnr", "ssim", "table", "timed", "write_table"]


def dynamic_range(clean: np.ndarray, given: float | None = None) -> float:
    """``given``, else the range of ``clean``'s integer dtype (255 for uint8), else, for float
    images (whose dtype says nothing), ``clean.max() − clean.min()``."""
    if given is not None:
        return float(given)
    if np.issubdtype(clean.dtype, np.integer):
        info = np.iinfo(clean.dtype)
        return float(info.max) - float(info.min)
    return float(np.max(clean)) - float(np.min(clean))


def psnr(clean: np.ndarray, restored: np.ndarray, data_range: float | None = None) -> float:
    """PSNR in dB of ``restored`` (not clipped) against ``clean``; see :func:`dynamic_range`."""
    err = np.asarray(restored, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    mse = float(np.mean(err**2))
    peak = dynamic_range(clean, data_range)
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def ssim(
    clean: np.ndarray,
    restored: np.ndarray,
    data_range: float | None = None,
    axes: str | None = None,
) -> float:
    """SSIM; colour per channel (mean), stacks plane by plane (mean over Z).

    ``axes`` is "yx", "yxc" or "zyx"; by default (H, W, 3) is colour and other 3D arrays are
    stacks.
    """
    from skimage.metrics import structural_similarity

    truth = np.asarray(clean, dtype=np.float64)
    guess = np.asarray(restored, dtype=np.float64)
    if axes is None:
        axes = "yx" if truth.ndim == 2 else "yxc" if truth.shape[-1] == 3 else "zyx"
    peak = dynamic_range(clean, data_range)
    if axes == "yx":
        return float(structural_similarity(truth, guess, data_range=peak))
    if axes == "yxc":
        return float(structural_similarity(truth, guess, data_range=peak, channel_axis=-1))
    if axes == "zyx":
        return float(
            np.mean(
                [
                    structural_similarity(t, g, data_range=peak)
                    for t, g in zip(truth, guess, strict=True)
                ]
            )
        )
    raise ValueError(f"axes must be 'yx', 'yxc' or 'zyx', got {axes!r}")


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), wall seconds)``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


# The call runs in a fresh interpreter started by a fresh launcher: the launcher's
# RUSAGE_CHILDREN peak is then that call's own (it only ever has this one child), rather than
# the largest of every child this process has reaped so far.
_CALL = """
import importlib, pickle, sys
with open(sys.argv[1], "rb") as f:
    paths, target, args, kwargs = pickle.load(f)
sys.path[:0] = paths
module, name = target.split(":")
getattr(importlib.import_module(module), name)(*args, **kwargs)
"""
_LAUNCH = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def last(snapshots: Any) -> Any:
    """The last of ``snapshots`` (a run's final Snapshot), consuming them; an error if none came."""
    final = collections.deque(snapshots, maxlen=1)
    if not final:
        raise RuntimeError("the run gave no snapshot")
    return final[0]


def peak_memory_mb(target: str, *args: Any, paths: Sequence[str] = (), **kwargs: Any) -> float:
    """Peak resident memory (MiB) of ``module:function(*args, **kwargs)`` run in a fresh process.

    Includes the interpreter and the module's imports (numpy ≈ 30 MiB, torch ≈ 300 MiB): run a
    no-op of the same module to subtract them if needed. ``paths`` are put in front of
    ``sys.path`` there (this file's folder always is, so benchmark modules import). Arguments
    travel by pickle.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
        pickle.dump(([here, *paths], target, args, kwargs), f)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _LAUNCH, _CALL, f.name],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    return int(out.stdout.strip().splitlines()[-1]) / 1024  # Linux reports KiB


def _cell(value: Any, fmt: str | None) -> str:
    if value is None:
        return "–"
    if fmt is not None:
        return format(value, fmt)
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table(
    rows: Sequence[dict],
    columns: Sequence[str] | None = None,
    formats: dict[str, str] | None = None,
    command: str | None = None,
    note: str = "",
) -> str:
    """A markdown table of ``rows`` under a header naming the command, the date and machine.

    ``command`` defaults to this process's own command line; ``formats`` maps a column to a
    format spec (floats default to 2 decimals, missing values print as "–").
    """
    columns = list(columns or (rows[0].keys() if rows else []))
    formats = formats or {}
    command = command or "python " + " ".join(sys.argv)
    machine = f"{os.cpu_count()} CPU cores, {platform.machine()}"
    lines = [f"# `{command}` ({datetime.date.today().isoformat()}, {machine})", ""]
    if note:
        lines += [note, ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        cells = (_cell(row.get(c), formats.get(c)) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(path: str, rows: Sequence[dict], **options: Any) -> str:
    """Write :func:`table` to ``path`` (and return it)."""
    text = table(rows, **options)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


def row_text(row: dict) -> str:
    """One result row as a line for the terminal."""
    return " · ".join(f"{k} {_cell(v, None)}" for k, v in row.items() if v not in (None, ""))


def record(
    name: str,
    title: str,
    rows: Sequence[dict],
    notes: Sequence[str] = (),
    plots: Sequence[dict] = (),
    folder: str | None = None,
) -> dict:
    """Write a benchmark's result as ``benchmarks/results/NAME.json`` (the format the docs
    render: name, title, command, date, machine, columns, rows, notes, plots) and a markdown
    table beside it; return the record."""
    import json
    from pathlib import Path

    columns = list(rows[0].keys()) if rows else []
    out = {
        "name": name,
        "title": title,
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "machine": _machine(),
        "columns": columns,
        "rows": [[_plain(r.get(c)) for c in columns] for r in rows],
        "notes": list(notes),
        "plots": list(plots),
    }
    where = Path(folder or Path(__file__).parent / "results")
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{name}.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    (where / f"{name}.md").write_text(
        table(rows, columns, command=out["command"], note="\n\n".join(notes))
    )
    return out


def _machine() -> str:
    """The machine in a few words: cores and architecture."""
    return f"{os.cpu_count()} CPU cores, {platform.machine()} {platform.processor()}".strip()


def _plain(value: Any) -> Any:
    """A JSON-friendly cell: numpy scalars as Python numbers, floats rounded."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 4)
    return value
