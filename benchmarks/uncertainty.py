"""Uncertainty: are the maps ``uncertainty=True`` returns calibrated?

For each image, a run with ``uncertainty=True`` (an ensemble's spread σ̂ per pixel) is scored
against the true error: the share of pixels with |error| ≤ 2σ̂ (a calibrated Gaussian σ̂
gives 95 %) and the rank correlation (Spearman) of σ̂ with |error|. The raw spread of a few
members underestimates the error; the factor that would make it cover 95 % is reported too,
so one can be chosen on the tuning images and checked on the held-out ones.

    python -m benchmarks uncertainty --tasks denoise deconvolve --split tuning --size 128
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import datasets, measure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    datasets.add_case_arguments(parser)
    parser.add_argument("--ensemble", type=int, default=4)
    parser.add_argument("--device", default="cpu")


def calibration(error: np.ndarray, sigma: np.ndarray) -> dict:
    """Coverage of ±2σ̂, the factor on σ̂ that would cover 95 %, and Spearman(σ̂, |error|)."""
    from scipy.stats import spearmanr

    error, sigma = np.abs(error).ravel(), sigma.ravel()
    ratio = error / np.maximum(sigma, 1e-12)
    return {
        "coverage ±2σ": float(np.mean(error <= 2 * sigma)),
        "factor for 95 %": float(np.quantile(ratio, 0.95) / 2),
        "spearman": float(spearmanr(sigma, error).statistic),
    }


def _factors() -> dict[str, float]:
    from napari_dip.pipeline.assembly import UNCERTAINTY_FACTORS

    return UNCERTAINTY_FACTORS


def run(args: argparse.Namespace) -> dict:
    from napari_dip import restore_steps

    rows = []
    for task in args.tasks:
        for seed, name in enumerate(args.images or datasets.names(args.split)):
            observed, kwargs, truth, _ = datasets.task_case(task, name, args.size, 25.0, seed)
            start = time.perf_counter()
            run = restore_steps(
                observed,
                uncertainty=True,
                ensemble=args.ensemble,
                device=args.device,
                previews=False,
                **kwargs,
            )
            last = measure.last(run)
            sigma = last.uncertainty()
            error = np.asarray(last.result(), np.float64) - truth
            row = {
                "task": task,
                "image": name,
                "members": args.ensemble,
                **calibration(error, sigma),
                "mean σ̂": float(sigma.mean()),
                "rmse": float(np.sqrt(np.mean(error**2))),
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            print(measure.row_text(row), flush=True)
    return measure.record(
        name=f"uncertainty_{args.split}_{args.size}_{'_'.join(args.tasks)}",
        title=(
            f"Uncertainty calibration: {', '.join(args.tasks)} "
            f"({args.split} images, {args.size}², {args.ensemble} members)"
        ),
        rows=rows,
        notes=[
            "coverage ±2σ: share of pixels whose true error is within twice the map's σ̂.",
            "σ̂: the members' spread times the task's factor, "
            + ", ".join(f"{t} {f:g}" for t, f in _factors().items() if t in args.tasks)
            + " (napari_dip.pipeline.assembly.UNCERTAINTY_FACTORS).",
        ],
        plots=[
            {
                "title": "coverage of ±2σ̂",
                "x": "image",
                "y": ["coverage ±2σ"],
                "group": "task",
                "kind": "bar",
            }
        ],
    )
