"""Speed: batch throughput per worker count, and big images and stacks end to end.

``--part throughput``: a folder of small images through ``napari-dip batch`` in this process
with 1 and 2 workers and on a Dask LocalCluster of 1 and 2 worker processes; images per minute
and the speed-up over one worker. ``--part big``: a 2048² uint16 image and a 20 × 512² stack
with the defaults; seconds, steps, PSNR and peak memory (in a fresh process).

    python -m benchmarks speed --part throughput --files 6 --size 128
    python -m benchmarks speed --part big
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import datasets, measure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--part", choices=("throughput", "big"), default="throughput")
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--steps", type=int, help="fixed steps per file (default: auto stop)")


def _folder(root: Path, files: int, size: int) -> Path:
    import imageio.v3 as iio

    inputs = root / "in"
    inputs.mkdir()
    names = datasets.names("tuning")
    for k in range(files):
        clean = datasets.image(names[k % len(names)], size)
        observed, _, _ = datasets.gaussian_noise(clean, 25, seed=k)
        iio.imwrite(inputs / f"image{k}.png", observed)
    return inputs


def _throughput(args: argparse.Namespace) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = _folder(Path(tmp), args.files, args.size)
        steps = ["--steps", str(args.steps), "--stop", "none"] if args.steps else []
        base = None
        for where in ("in process", "LocalCluster"):
            for workers in args.workers:
                out = Path(tmp) / f"out-{where[:2]}-{workers}"
                place = ["--workers", str(workers)]
                if where == "LocalCluster":
                    place = ["--cluster", f"local:{workers}"]
                command = [sys.executable, "-m", "napari_dip", "batch", "denoise", str(inputs)]
                command += ["-o", str(out), "-q", "--device", "cpu", *place, *steps]
                start = time.perf_counter()
                subprocess.run(command, check=True)
                seconds = time.perf_counter() - start
                per_minute = 60 * args.files / seconds
                base = base or per_minute
                row = {
                    "where": where,
                    "workers": workers,
                    "files": args.files,
                    "seconds": seconds,
                    "images per minute": per_minute,
                    "speed-up": per_minute / base,
                }
                rows.append(row)
                print(measure.row_text(row), flush=True)
    return rows


_BIG = """
import sys, time, numpy as np, napari_dip
sys.path.insert(0, {root!r})
from benchmarks import datasets, measure
kind = {kind!r}
if kind == "2048":
    clean = datasets.image("camera", None)
    clean = np.tile(clean, (4, 4))[:2048, :2048].astype(np.uint16) * 64
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 * 64, clean.shape), 0, 65535)
    noisy, kw, peak = noisy.astype(np.uint16), {{}}, 255 * 64
else:
    noisy, extra, clean = datasets.photon_stack(30, 0, (20, 512, 512))
    kw, peak = {{"axes": "ZYX", "noise": "poisson-gaussian"}}, float(clean.max() - extra["offset"])
start = time.perf_counter()
last = None
for last in napari_dip.restore_steps(noisy, device="cpu", previews=False, **kw):
    pass
seconds = time.perf_counter() - start
offset = 0 if kind == "2048" else extra["offset"]
import resource
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(seconds, last.step, measure.psnr(clean - offset, last.result() - offset, peak), peak_mb)
"""


def _big() -> list[dict]:
    rows = []
    root = str(Path(__file__).parent.parent)
    for kind, label in (("2048", "2048² uint16, σ = 25 × 64"), ("stack", "20 × 512² photon stack")):
        out = subprocess.run(
            [sys.executable, "-c", _BIG.format(root=root, kind=kind)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        seconds, steps, psnr, peak_mb = (float(v) for v in out.stdout.split()[-4:])
        row = {
            "input": label,
            "seconds": seconds,
            "minutes": seconds / 60,
            "steps": int(steps),
            "psnr": psnr,
            "peak memory (MB)": peak_mb,
        }
        rows.append(row)
        print(measure.row_text(row), flush=True)
    return rows


def run(args: argparse.Namespace) -> dict:
    if args.part == "throughput":
        rows = _throughput(args)
        return measure.record(
            name="speed_throughput",
            title=f"Batch throughput: {args.files} images of {args.size}², σ = 25",
            rows=rows,
            notes=[
                "In process: pieces side by side, one torch thread each; LocalCluster: one "
                "worker process per core with one thread each. Start-up (imports, the "
                "cluster) is included: it is what a user waits for.",
                f"This machine has {os.cpu_count()} cores: more workers than cores are not "
                "measured here. Files are independent pieces, so N workers on N free cores "
                "should approach N × one worker's rate, less the start-up and the slowest file.",
            ],
            plots=[
                {
                    "title": "images per minute",
                    "x": "workers",
                    "y": ["images per minute"],
                    "group": "where",
                    "kind": "line",
                }
            ],
        )
    rows = _big()
    return measure.record(
        name="speed_big",
        title="Big images and stacks with the defaults",
        rows=rows,
        notes=["Peak memory: the largest resident set of the process that ran the case."],
    )
