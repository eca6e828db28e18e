"""Benchmark: does the PSNR curve decay after its peak? (issue 4, the spectral-bias controls)

    python benchmarks/lipschitz_decay.py --presets fast,fast-lipschitz --tasks denoise50 \\
        --images camera --curves decay.json                 # one setting; table + curves
    python benchmarks/lipschitz_decay.py --presets fast-lipschitz --lipschitz 1.2,1.4 \
        --tasks denoise50 --images camera               # the same network with other bounds λ
    python benchmarks/lipschitz_decay.py --report a.json b.json   # one table from several runs

Each (task, image, preset) runs with no stop rule until the step count is 3× the step of the
best PSNR so far (so the whole window "peak … 3 × peak" is seen) or until ``--cap``. The PSNR of
the smoothed output (what the API returns) and of the raw output are taken every ``--every``
steps against the ground truth (evaluation only). Per run: the peak, its step, the lowest
PSNR between the peak and 3× its step, the decay (peak − that lowest value), and whether the
run reached 3× the peak step ("window seen"); a run cut by ``--cap`` only shows the decay
within the part it saw. The curves go to ``--curves`` (JSON) and a few points of each to the
printed table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np

from early_stopping import TASKS, degrade, psnr

POINTS = (1.0, 1.5, 2.0, 2.5, 3.0)  # where the table samples each curve, in peak steps


def decay(steps: list[int], values: list[float]) -> dict:
    """Peak, its step, and the lowest value after it within 3× the peak's step."""
    s, v = np.asarray(steps), np.asarray(values)
    i = int(np.argmax(v))
    peak_step = int(s[i])
    window = (s >= peak_step) & (s <= 3 * peak_step)
    j = int(np.flatnonzero(window)[np.argmin(v[window])])
    return {
        "peak": float(v[i]),
        "peak_step": peak_step,
        "low": float(v[j]),
        "low_step": int(s[j]),
        "decay": float(v[i] - v[j]),
        "window_seen": bool(s[-1] >= 3 * peak_step),
    }


def variant(name: str, lipschitz: float | None):
    """The preset ``name``, or a copy with another Lipschitz bound (named after it)."""
    from dataclasses import replace

    from napari_dip.engine import get_preset

    preset = get_preset(name)
    if lipschitz is None:
        return preset
    network = replace(preset.network, lipschitz=lipschitz)
    return replace(preset, name=f"{name} λ={lipschitz:g}", network=network)


def run_one(
    task: str, image: str, preset: str, size: int, cap: int, every: int, lipschitz: float | None
) -> dict:
    from napari_dip import restore_steps
    from napari_dip.samples import grey_crop

    chosen = variant(preset, lipschitz)

    clean = grey_crop(image, size)
    observed, options, baseline, baseline_name = degrade(task, clean)
    curve: dict[str, list] = {"step": [], "average": [], "estimate": []}
    best_step, best = 0, -np.inf
    start = time.perf_counter()
    snapshots = restore_steps(
        observed,
        task=TASKS[task][0],  # type: ignore[arg-type]
        preset=chosen,
        steps=cap,
        stop="none",
        update_every=every,
        seed=0,
        tile=None,  # one fit of the whole image: its curve
        **options,
    )
    for snap in snapshots:
        average = round(psnr(clean, snap.average), 3)  # 0.001 dB: plenty, and a small file
        curve["step"].append(snap.step)
        curve["average"].append(average)
        curve["estimate"].append(round(psnr(clean, snap.estimate), 3))
        if average > best:
            best, best_step = average, snap.step
        if snap.step >= 3 * best_step and snap.step >= 10 * every:
            snapshots.close()  # the window after the peak is complete
            break
    seconds = time.perf_counter() - start
    return {
        "task": task,
        "image": image,
        "preset": chosen.name,
        "size": size,
        "cap": cap,
        "seconds": seconds,
        "input_psnr": psnr(clean, baseline),
        "input": baseline_name,
        "smoothed": decay(curve["step"], curve["average"]),
        "raw": decay(curve["step"], curve["estimate"]),
        **curve,
    }


def at(run: dict, step: float) -> str:
    """The smoothed PSNR at the sample nearest ``step`` ('–' past the run's end)."""
    steps = np.asarray(run["step"])
    if step > steps[-1] + run["step"][0]:
        return "–"
    return f"{run['average'][int(np.argmin(np.abs(steps - step)))]:.2f}"


def print_table(runs: list[dict]) -> None:
    print(
        "| preset | task | image | peak PSNR (smoothed) | peak step | lowest in peak…3×peak "
        "| decay | window seen | raw output: peak / decay | input | s/step |"
    )
    print("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in runs:
        m, raw = r["smoothed"], r["raw"]
        seen = "yes" if m["window_seen"] else f"no (cap {r['step'][-1]})"
        print(
            f"| {r['preset']} | {r['task']} | {r['image']} | {m['peak']:.2f} | {m['peak_step']} "
            f"| {m['low']:.2f} @ {m['low_step']} | **{m['decay']:.2f}** | {seen} "
            f"| {raw['peak']:.2f} / {raw['decay']:.2f} | {r['input_psnr']:.2f} "
            f"| {r['seconds'] / r['step'][-1]:.3f} |"
        )
    print("\nSmoothed PSNR along each curve, at multiples of its peak step\n")
    print("| preset | task | image | " + " | ".join(f"{p:g}× peak" for p in POINTS) + " |")
    print("|---|---|---|" + "---:|" * len(POINTS))
    for r in runs:
        cells = [at(r, p * r["smoothed"]["peak_step"]) for p in POINTS]
        print(f"| {r['preset']} | {r['task']} | {r['image']} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default="denoise15,denoise25,denoise50")
    parser.add_argument("--images", default="camera,astronaut")
    parser.add_argument("--presets", default="fast,fast-lipschitz")
    parser.add_argument(
        "--lipschitz", default=None, help="comma-separated bounds λ replacing the presets' own"
    )
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--cap", type=int, default=15000, help="most steps per run")
    parser.add_argument("--every", type=int, default=10, help="steps between PSNR samples")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--curves", type=Path, default=Path("lipschitz_decay.json"))
    parser.add_argument("--report", type=Path, nargs="+", help="print the table of these runs")
    args = parser.parse_args()

    if args.report:
        runs = [run for path in args.report for run in json.loads(path.read_text())["runs"]]
        print_table(runs)
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    bounds = [float(v) for v in args.lipschitz.split(",")] if args.lipschitz else [None]
    runs: list[dict] = []
    for task in args.tasks.split(","):
        if task not in TASKS:
            raise SystemExit(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
        for image in args.images.split(","):
            for preset, lipschitz in product(args.presets.split(","), bounds):
                run = run_one(task, image, preset, args.size, args.cap, args.every, lipschitz)
                runs.append(run)
                m = run["smoothed"]
                print(
                    f"done: {run['preset']} {task} {image}: peak {m['peak']:.2f} "
                    f"@ {m['peak_step']}, decay {m['decay']:.2f} dB, {run['step'][-1]} steps in "
                    f"{run['seconds']:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
                args.curves.write_text(json.dumps({"runs": runs}))
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {args.size}×{args.size} grey, precision auto; "
        f"PSNR every {args.every} steps\n"
    )
    print_table(runs)
    print(f"\ncurves: {args.curves}")


if __name__ == "__main__":
    main()
