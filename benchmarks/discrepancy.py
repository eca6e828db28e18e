"""Replay: the discrepancy principle, alone and with ES-WMV (whichever stops first), on recorded
denoising runs (issues 4, 5).

    cd benchmarks && python discrepancy.py results/curves/*.json.gz --factors 0.9,1,1.1

Replays recorded runs of ``early_stopping.py --curves`` (denoising only) through the engine's
own rules. :class:`napari_dip.engine.Discrepancy` stops at the first step where the data term,
averaged over its window (``--window`` steps, default the engine's), falls to ``factor × σ̂²``
(σ̂: :func:`napari_dip.engine.noise_level` of the noisy image in the engine's normalised
units); it is fed the recorded loss, sampled every 10 steps, so its window holds ``window /
10`` samples (a coarser average than the engine's, of the same span), and it stops ``--lag``
after reaching the level (default the engine's). Before the peak the output misses signal and
the loss is above σ²; past it the network fits the noise and the loss falls below.
The table gives the chosen step and the gap to the oracle (the best smoothed PSNR of the run),
per factor (from step 10 on); then ES-WMV alone as ``stop="wmv"`` has it (burn-in, tolerance
and patience from the engine, replayed on the recorded variance as ``early_stopping.py
--replay`` does) and "wmv+disc": whichever of the two stops first (discrepancy at factor 1, not
before step ``--min-step``).
Summaries: mean and worst gap per preset, size and image set (the benchmark images *camera*
and *astronaut*, or the others).
"""

from __future__ import annotations

import argparse
import gzip
import json
import warnings
from pathlib import Path

import numpy as np

from early_stopping import _recorded_rule, degrade

BENCHMARK_IMAGES = ("camera", "astronaut")


def recorded_discrepancy(
    run: dict, problem, factor: float, min_step: int, window: int = 20, lag: float = 0.1
) -> int | None:
    """The engine's :class:`~napari_dip.engine.Discrepancy` (its σ̂ from ``problem.y``, its
    decision) fed the recorded loss, sampled every 10 steps, so it averages ``window / 10``
    samples for ``window`` steps; returns its stop step (None: never)."""
    import torch

    from napari_dip.engine import Discrepancy

    rule = Discrepancy(factor, window=max(1, round(window / 10)), lag=lag, min_step=min_step)
    rule.reset()
    rule.prepare(problem)
    for step, loss in zip(run["step"], run["loss"], strict=True):
        marker = torch.tensor(float(step))
        rule.observe(step, marker, marker, torch.tensor(loss, dtype=torch.float64))
        if step % rule.check_every == 0 and rule.check(step):
            return step
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("curves", type=Path, nargs="+")
    parser.add_argument("--factors", default="0.9,1,1.1")
    parser.add_argument("--min-step", type=int, default=50, help="of the discrepancy")
    parser.add_argument(
        "--window", type=int, default=None, help="of the discrepancy, in steps (engine's)"
    )
    parser.add_argument("--lag", type=float, default=None, help="of the discrepancy (engine's)")
    args = parser.parse_args()

    import torch

    from napari_dip._arrays import prepare_image
    from napari_dip.engine import Problem, stopping
    from napari_dip.samples import grey_crop

    wmv = stopping.make_stop_rule("wmv")
    default = stopping.Discrepancy()
    window = default.window if args.window is None else args.window
    lag = default.lag if args.lag is None else args.lag

    factors = [float(f) for f in args.factors.split(",")]
    runs = {}
    for path in args.curves:  # a run recorded twice: the later file's
        text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text()
        for run in json.loads(text)["runs"]:
            if run["task"].startswith("denoise"):
                runs[run["task"], run["image"], run["preset"], run["size"]] = run
    print(f"replayed from {', '.join(map(str, args.curves))}\n")
    cells = " | ".join(f"×{f:g}: step | ×{f:g}: gap" for f in factors)
    print(
        f"| task | image | preset | size | σ̂ / σ | oracle (step) | {cells} "
        "| wmv: chosen (stop) | wmv: gap | wmv+disc: chosen (stop) | wmv+disc: gap |"
    )
    print("|---|---|---|---:|---:|---:|" + "---:|" * (2 * len(factors) + 4))
    gaps: dict[float, list[float]] = {f: [] for f in factors}
    groups: dict[tuple, dict[str, list[float]]] = {}
    for (task, image, preset, size), run in runs.items():
        clean = grey_crop(image, size)
        noisy = degrade(task, clean)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # saturation warnings: known for these images
            unit, _ = prepare_image(noisy, None, None)
        problem = Problem(torch.from_numpy(np.asarray(unit, dtype=np.float32))[None, None])
        sigma = float(stopping.noise_level(problem.y))
        actual = np.std(noisy.astype(np.float64) - clean) / (float(noisy.max()) - noisy.min())
        steps = np.array(run["step"])
        psnr = np.array(run["psnr_average"])
        best = int(psnr.argmax())
        at = dict(zip(run["step"], psnr, strict=True))
        curve = max((v for k, v in run["scores"].items() if k.startswith("wmv")), key=len)
        w_chosen, w_stop = _recorded_rule(curve, wmv.burn_in, wmv.tolerance, wmv.patience)
        w_stop = w_stop or int(steps[-1])  # not stopped: the run's end (its step ceiling)
        crossing = recorded_discrepancy(run, problem, 1.0, args.min_step, window, lag)
        a_chosen, a_stop = w_chosen, w_stop
        if crossing is not None and crossing <= w_stop:
            a_chosen = a_stop = crossing
        w_gap, a_gap = psnr[best] - at[w_chosen], psnr[best] - at[a_chosen]
        group = groups.setdefault(
            (preset, size, "benchmark" if image in BENCHMARK_IMAGES else "others"),
            {"wmv": [], "auto": [], "wmv stop": [], "auto stop": []},
        )
        group["wmv"].append(w_gap)
        group["auto"].append(a_gap)
        group["wmv stop"].append(w_stop)
        group["auto stop"].append(a_stop)
        row = []
        for f in factors:
            hit = recorded_discrepancy(run, problem, f, 0, window, lag)
            if hit is not None:
                gap = float(psnr[best] - at[hit])
                gaps[f].append(gap)
                row += [str(hit), f"{gap:.2f}"]
            else:
                gaps[f].append(float("nan"))
                row += ["never", "–"]
        row += [f"{w_chosen} ({w_stop})", f"{w_gap:.2f}", f"{a_chosen} ({a_stop})", f"{a_gap:.2f}"]
        print(
            f"| {task} | {image} | {preset} | {size} | {sigma / actual:.2f} | "
            f"{psnr[best]:.2f} ({steps[best]}) | " + " | ".join(row) + " |"
        )
    print("\nMean gap to the oracle (dB), worst in brackets, and mean stop step:\n")
    print("| preset | size | images | runs | wmv | wmv+disc | wmv stop | wmv+disc stop |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for (preset, size, images), g in sorted(groups.items()):
        print(
            f"| {preset} | {size} | {images} | {len(g['wmv'])} | "
            f"{np.mean(g['wmv']):.2f} ({max(g['wmv']):.2f}) | "
            f"{np.mean(g['auto']):.2f} ({max(g['auto']):.2f}) | "
            f"{np.mean(g['wmv stop']):.0f} | {np.mean(g['auto stop']):.0f} |"
        )
    print()
    for f, g in gaps.items():
        values = np.array(g)
        print(
            f"- factor {f:g}: mean gap {np.nanmean(values):.2f} dB, worst {np.nanmax(values):.2f}, "
            f"never reached in {int(np.isnan(values).sum())} of {len(values)} runs"
        )


if __name__ == "__main__":
    main()
