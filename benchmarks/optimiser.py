"""Benchmark: Adam's moment decays (betas) and learning rate against steps to the best (issue 5).

    python benchmarks/optimiser.py                                   # camera, 128², σ = 25
    python benchmarks/optimiser.py --size 256 --steps 1600 --variants 0.9:0.999,0.8:0.9

Each variant is ``beta1:beta2[:lr]`` and runs the ``fast`` network (seed 0, bfloat16 where the
CPU has it, the preset's input perturbation and exponential average) through the library's own
fit loop for a fixed number of steps, no automatic stop. The smoothed output is scored against
the ground truth every ``--every`` steps (evaluation only). Per variant and image: the best
PSNR and its step, the first step within 0.1 dB of the *first* variant's best (the reference:
list Adam's defaults first) or of ``--target`` (e.g. the paper preset's best, 28.36 dB for
*camera* at 256², σ = 25, from ``results/paper_256_denoise25.json``), the PSNR at a few steps,
and the seconds per step.

Why: DIP's published setting is Adam with its default moments (0.9, 0.999) at lr 0.01. With
the narrow ``fast`` network most of the run is spent climbing, and a second-moment estimate
that forgets faster lets the step size follow the gradients as they shrink.
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import replace

from early_stopping import degrade, psnr

VARIANTS = "0.9:0.999,0.9:0.99,0.8:0.99,0.8:0.95,0.8:0.9,0.9:0.9,0.7:0.9,0.8:0.9:0.005"
AT = (100, 300, 500, 1000)


def run_one(spec: str, task: str, image: str, size: int, steps: int, every: int) -> dict:
    from napari_dip import restore_steps
    from napari_dip.engine import get_preset
    from napari_dip.samples import grey_crop

    parts = [float(v) for v in spec.split(":")]
    if len(parts) not in (2, 3):
        raise SystemExit(f"a variant is beta1:beta2[:lr], got {spec!r}")
    preset = get_preset("fast")
    preset = replace(preset, betas=(parts[0], parts[1]), lr=parts[2] if parts[2:] else preset.lr)
    clean = grey_crop(image, size)
    observed, _, _, _ = degrade(task, clean)
    curve: dict[int, float] = {}
    seconds = 0.0
    for snap in restore_steps(
        observed,
        preset=preset,
        steps=steps,
        stop="budget",
        update_every=every,
        seed=0,
        tile=None,  # one fit of the whole image: its curve
    ):
        curve[snap.step] = psnr(clean, snap.average)
        seconds = snap.elapsed
    best_step = max(curve, key=curve.get)
    return {"curve": curve, "best": curve[best_step], "best_step": best_step, "s": seconds / steps}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default=VARIANTS)
    parser.add_argument("--task", default="denoise25")
    parser.add_argument("--images", default="camera")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--target", type=float, default=None, help="reference PSNR (dB)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"`{' '.join(['python', 'benchmarks/optimiser.py', *sys.argv[1:]])}`: "
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.size}×{args.size} grey, {args.task}, {args.steps} steps, fast network\n"
    )
    at = " | ".join(f"@ {s}" for s in AT)
    ref = "first variant's best" if args.target is None else f"{args.target:g} dB"
    print(f"reference: {ref}\n")
    print(f"| image | betas:lr | best PSNR | at step | step ≥ ref − 0.1 | {at} | s/step |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(AT) + "---:|")
    for image in args.images.split(","):
        reference = args.target
        for spec in args.variants.split(","):
            r = run_one(spec, args.task, image, args.size, args.steps, args.every)
            reference = r["best"] if reference is None else reference
            reached = next((s for s, p in r["curve"].items() if p >= reference - 0.1), None)
            cells = " | ".join(f"{r['curve'][s]:.2f}" if s in r["curve"] else "–" for s in AT)
            print(
                f"| {image} | {spec} | {r['best']:.2f} | {r['best_step']} | "
                f"{reached if reached is not None else 'never'} | {cells} | {r['s']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
