"""Stop rules: how close each automatic stop comes to the best step in hindsight, per task.

For every image and task, one run with no automatic stop records the PSNR of the smoothed
output every few steps (the oracle: its best, chosen on the clean image); then each rule runs
as a user would, and its result's PSNR, steps and seconds are set beside the oracle. Parts are
fitted whole (``tile=None``): the rules are compared on single fits.

    python -m benchmarks stopping --tasks denoise inpaint super_resolve --size 128
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from . import datasets, measure

RULES = ("auto", "wmv", "discrepancy", "validation", "sure")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    datasets.add_case_arguments(parser)
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--rules", nargs="*", default=list(RULES), choices=RULES)
    parser.add_argument("--ceiling", type=int, help="steps of the oracle run (default: the task's)")
    parser.add_argument("--every", type=int, default=25, help="oracle sampling interval")
    parser.add_argument("--device", default="cpu")


def _score(truth: np.ndarray, result: np.ndarray, data_range: float, offset: float) -> float:
    return measure.psnr(truth - offset, np.asarray(result, np.float64) - offset, data_range)


def run(args: argparse.Namespace) -> dict:
    from napari_dip import restore_steps
    from napari_dip.pipeline.plan import default_steps

    rows = []
    names = args.images or datasets.names(args.split)
    for task in args.tasks:
        for seed, name in enumerate(names):
            observed, kwargs, truth, data_range = datasets.task_case(
                task, name, args.size, args.sigma, seed
            )
            offset = datasets.OFFSET if task == "deconvolve" else 0.0
            base: dict[str, Any] = {"device": args.device, "tile": None, **kwargs}
            ceiling = args.ceiling or default_steps("fast", task, "auto")
            curve = []
            for snap in restore_steps(
                observed, stop="none", steps=ceiling, update_every=args.every, **base
            ):
                curve.append((snap.step, _score(truth, snap.average, data_range, offset)))
            best_step, oracle = max(curve, key=lambda c: c[1])
            for rule in args.rules:
                if rule in ("discrepancy", "sure") and task != "denoise":
                    continue
                start = time.perf_counter()
                last = measure.last(restore_steps(observed, stop=rule, previews=False, **base))
                psnr = _score(truth, last.result(), data_range, offset)
                row = {
                    "task": task,
                    "image": name,
                    "rule": rule,
                    "psnr": psnr,
                    "oracle": oracle,
                    "gap": oracle - psnr,
                    "steps": last.step,
                    "chosen step": last.best_step,
                    "oracle step": best_step,
                    "seconds": time.perf_counter() - start,
                    "stopped by itself": last.stop_reason != "step budget reached",
                    "estimated psnr": last.estimated_psnr,
                }
                rows.append(row)
                print(measure.row_text(row), flush=True)
    return measure.record(
        name=f"stopping_{args.split}_{args.size}_{'_'.join(args.tasks)}",
        title=f"Stop rules against the oracle ({args.split} images, {args.size}², whole fits)",
        rows=rows,
        notes=[
            "oracle: the best PSNR of the smoothed output, sampled every "
            f"{args.every} steps of a run without an automatic stop (chosen on the clean image).",
            "gap: oracle − the rule's result; 'sure' and 'discrepancy' apply to denoising only.",
        ],
        plots=[
            {
                "title": "gap to the oracle (dB)",
                "x": "rule",
                "y": ["gap"],
                "group": "task",
                "kind": "bar",
            }
        ],
    )
