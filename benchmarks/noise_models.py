"""Benchmark: the Poisson data term against the squared error on photon-limited images.

    python benchmarks/noise_models.py                         # 128×128 slices, 3 photon levels
    python benchmarks/noise_models.py --size 64 --max-steps 300 --photons 20 --slices 1
                                                              # smoke test (about a minute)
    python benchmarks/noise_models.py --models "gaussian (MSE),poisson (known)"
    python benchmarks/noise_models.py --preset fast@0.9:0.999 --stop wmv   # other settings

Images: 2D slices of :func:`napari_dip.samples.photon_limited` (seeded cells and puncta over a
smooth background, Poisson counts recorded as ``offset + gain · count`` in uint16). Every noise
model denoises the same slice with the same seed and the same stop rule (``--stop``: a
name of ``stop=`` or of the rules grid of ``early_stopping.py``; default ``auto``) and preset
(``--preset``: a name, or ``name@b1:b2`` for other Adam betas; default ``fast``),
``--max-steps`` the ceiling. Reported per run: PSNR of the chosen result (what ``denoise``
returns) against the clean expected image, the best PSNR over the run (oracle, evaluation only,
from the smoothed output every ``--every`` steps), the chosen step, the steps run and seconds.
The photon-count models get the camera's true ``gain``/``offset`` ("known") or estimate them
from the image ("estimated").
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

GAIN, OFFSET = 1.0, 100.0


def psnr(clean: np.ndarray, estimate: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    span = float(clean.max() - clean.min())
    return float(peak_signal_noise_ratio(clean, estimate.astype(np.float32), data_range=span))


def models() -> dict[str, dict]:
    return {
        "gaussian (MSE)": {"noise": "gaussian"},
        "poisson (known)": {"noise": "poisson", "gain": GAIN, "offset": OFFSET},
        "poisson (estimated)": {"noise": "poisson"},
        "poisson-gaussian (estimated)": {"noise": "poisson-gaussian"},
    }


def run_one(noisy, clean, options, args) -> dict:
    from napari_dip import restore_steps

    start = time.perf_counter()
    best, last = -np.inf, None
    from early_stopping import preset_of, rules

    stop = rules().get(args.stop, args.stop)
    for last in restore_steps(
        noisy,
        task="denoise",
        preset=preset_of(args.preset),
        stop=stop,
        steps=args.max_steps,
        update_every=args.every,
        seed=args.seed,
        device=args.device,
        **options,
    ):
        best = max(best, psnr(clean, last.average))
    seconds = time.perf_counter() - start
    assert last is not None
    return {
        "psnr": psnr(clean, last.result()),
        "oracle": best,
        "chosen": last.best_step,
        "steps": last.step,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="slice side (default 128)")
    parser.add_argument(
        "--photons",
        default="5,20,100",
        help="comma-separated peak photon levels above background (default 5,20,100)",
    )
    parser.add_argument("--slices", type=int, default=2, help="slices per level (default 2)")
    parser.add_argument("--max-steps", type=int, default=3000, help="step ceiling (3000)")
    parser.add_argument("--every", type=int, default=50, help="oracle scoring interval (50)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="", help="comma-separated subset of the models")
    parser.add_argument("--preset", default="fast", help="name or name@b1:b2 (default fast)")
    parser.add_argument("--stop", default="auto", help="stop rule (default auto)")
    args = parser.parse_args()

    import torch

    from napari_dip import samples

    torch.set_num_threads(args.threads)
    chosen = models()
    if args.models:
        wanted = [name.strip() for name in args.models.split(",")]
        unknown = set(wanted) - set(chosen)
        if unknown:
            parser.error(f"unknown models {sorted(unknown)}; choose from {sorted(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in wanted}
    print(
        f"# noise models: {args.size}×{args.size} slices, max {args.max_steps} steps, "
        f"preset {args.preset}, stop {args.stop!r}, "
        f"{args.threads} thread(s), {args.device}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}\n"
    )
    print("| noise model | image | photons | PSNR (dB) | oracle PSNR | chosen step | steps | s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    shape = (max(args.slices, 1) * 4, args.size, args.size)
    for level in (float(p) for p in args.photons.split(",")):
        noisy_stack, clean_stack = samples.photon_limited(
            shape, photons=level, gain=GAIN, offset=OFFSET, seed=args.seed
        )
        for index in np.linspace(0, shape[0] - 1, args.slices + 2)[1:-1].round().astype(int):
            noisy, clean = noisy_stack[index], clean_stack[index]
            image = f"slice {index}"
            print(
                f"| noisy input | {image} | {level:g} | {psnr(clean, noisy):.2f} | | | | |",
                flush=True,
            )
            for name, options in chosen.items():
                row = run_one(noisy, clean, options, args)
                print(
                    f"| {name} | {image} | {level:g} | {row['psnr']:.2f} | {row['oracle']:.2f} "
                    f"| {row['chosen']} | {row['steps']} | {row['seconds']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
