"""Benchmark: DIP denoising, inpainting and ×4 super-resolution on bundled images, per preset.

    python benchmarks/run.py                      # full table (≈15 min on 2 CPU cores)
    python benchmarks/run.py --paper-steps 0      # skip the paper preset
    python benchmarks/run.py --steps 50 --size 64 # smoke test

Each configuration runs in its own process so its peak memory is its own (peak RSS on the CPU,
peak allocated GPU memory on CUDA). On a CPU the paper preset's full run takes hours per image,
so by default it runs ``--paper-steps`` steps only: enough to time a step, not to judge its
quality — its PSNR column is marked with the step count it reached.

``classical`` (in ``--presets`` by default) adds what a user would pick instead: BM3D (``bm3d``
package, ``pip install napari-dip[benchmarks]``), non-local means and TV (scikit-image) for
denoising, biharmonic inpainting (scikit-image), bicubic upsampling for super-resolution. BM3D
and non-local means are given the true σ, TV the best weight of a grid: both are advantages
DIP does not get.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np

from early_stopping import degrade  # one definition of each task's observation

TASKS = {"denoise": "denoise σ=25", "inpaint": "inpaint 50%", "super_resolve": "SR ×4"}
KEYS = {"denoise": "denoise25", "inpaint": "inpaint", "super_resolve": "sr4"}  # early_stopping


def classical(task: str, observed: np.ndarray, options: dict, baseline: np.ndarray) -> dict:
    """What a user would pick instead of DIP: ``{method: (output in 0..255, seconds)}``.

    BM3D and non-local means get the true σ (an advantage DIP does not have); TV's weight is
    the best of a small grid against the ground truth (an oracle: marked in the table).
    """
    from skimage import restoration

    y = observed.astype(np.float64) / 255
    out: dict[str, tuple[np.ndarray, float]] = {}

    def timed(name: str, fn) -> None:
        start = time.perf_counter()
        result = fn()
        out[name] = (np.clip(result, 0, 1) * 255, time.perf_counter() - start)

    if task == "denoise":
        import bm3d

        sigma = 25 / 255
        timed("BM3D (σ given)", lambda: bm3d.bm3d(y, sigma_psd=sigma))
        timed(
            "non-local means (σ given)",
            lambda: restoration.denoise_nl_means(
                y, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True
            ),
        )
        for weight in (0.04, 0.06, 0.08, 0.10, 0.12, 0.15):
            timed(f"TV {weight}", lambda w=weight: restoration.denoise_tv_chambolle(y, weight=w))
    elif task == "inpaint":
        timed("biharmonic", lambda: restoration.inpaint_biharmonic(y, options["mask"]))
    else:
        out["bicubic"] = (baseline, 0.0)
    return out


def run_one(
    task: str, image_name: str, preset: str, size: int, steps: int | None, device: str
) -> list[dict]:
    """One configuration: degrade, restore, score. Returns rows of the table."""
    import torch
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    import napari_dip
    from napari_dip.samples import grey_crop

    clean = grey_crop(image_name, size)
    observed, kwargs, baseline, _ = degrade(KEYS[task], clean)
    truth = clean.astype(np.float64)

    def row(method: str, steps_done: int | None, out: np.ndarray, seconds: float, peak: float):
        return {
            "task": TASKS[task],
            "image": image_name,
            "preset": method,
            "steps": steps_done,
            "psnr": peak_signal_noise_ratio(truth, out, data_range=255),
            "ssim": structural_similarity(truth, out, data_range=255),
            "baseline_psnr": peak_signal_noise_ratio(truth, baseline, data_range=255),
            "seconds": seconds,
            "s_per_step": seconds / steps_done if steps_done else None,
            "peak_mb": peak,
        }

    if preset == "classical":
        results = classical(task, observed, kwargs, baseline)
        tv = {k: v for k, v in results.items() if k.startswith("TV ")}
        rows = [row(k, None, v[0], v[1], math.nan) for k, v in results.items() if k not in tv]
        if tv:  # keep the oracle-best weight only, with the time of that one run
            scored = {
                k: peak_signal_noise_ratio(truth, v[0], data_range=255) for k, v in tv.items()
            }
            best = max(scored, key=scored.get)
            weight = best.split()[1]
            rows.append(row(f"TV (weight {weight}, oracle-tuned)", None, *tv[best], math.nan))
        return rows
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    snaps = list(
        napari_dip.restore_steps(
            observed,
            task=task,
            preset=preset,
            steps=steps,
            update_every=10**9,
            device=device,
            **kwargs,
        )
    )
    last = snaps[-1]
    seconds = time.perf_counter() - start
    if device.startswith("cuda"):
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [row(preset, last.step, last.result().astype(np.float64), seconds, peak_mb)]


BASELINE = {"denoise σ=25": "noisy", "inpaint 50%": "mean fill", "SR ×4": "bicubic"}


def print_table(rows: list[dict], partial: set[str]) -> None:
    print(
        "| task | image | preset | steps | PSNR (dB) | SSIM | reference PSNR | seconds "
        "| s/step | peak MB |"
    )
    print("|---|---|---|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        note = " (timing run)" if r["preset"] in partial else ""
        reference = f"{r['baseline_psnr']:.2f} ({BASELINE[r['task']]})"
        per_step = "–" if r["s_per_step"] is None else f"{r['s_per_step']:.3f}"
        peak = "–" if math.isnan(r["peak_mb"]) else f"{r['peak_mb']:.0f}"
        steps = "–" if r["steps"] is None else r["steps"]
        print(
            f"| {r['task']} | {r['image']} | {r['preset']}{note} | {steps} | "
            f"{r['psnr']:.2f} | {r['ssim']:.3f} | {reference} | "
            f"{r['seconds']:.1f} | {per_step} | {peak} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default="denoise,inpaint,super_resolve")
    parser.add_argument("--images", default="camera,astronaut")
    parser.add_argument("--presets", default="fast,paper,classical")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None, help="override every preset's steps")
    parser.add_argument(
        "--paper-steps",
        type=int,
        default=20,
        help="steps for the paper preset on a CPU (0 = skip it; -1 = full run)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--one", nargs=3, metavar=("TASK", "IMAGE", "PRESET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.one:
        task, image, preset = args.one
        steps = None if args.steps is None or args.steps < 0 else args.steps
        print(json.dumps(run_one(task, image, preset, args.size, steps, args.device)))
        return

    from napari_dip.engine import resolve_device

    on_cpu = resolve_device(args.device).type == "cpu"
    rows, partial = [], set()
    for task in args.tasks.split(","):
        for image in args.images.split(","):
            for preset in args.presets.split(","):
                steps = args.steps
                if preset == "paper" and on_cpu and args.steps is None:
                    if args.paper_steps == 0:
                        continue
                    if args.paper_steps > 0:
                        steps = args.paper_steps
                        partial.add(preset)
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    task,
                    image,
                    preset,
                    "--size",
                    str(args.size),
                    "--device",
                    args.device,
                ]
                if steps is not None:
                    cmd += ["--steps", str(steps)]
                result = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if result.returncode:
                    print(result.stderr, file=sys.stderr)
                    raise SystemExit(f"benchmark failed: {' '.join(cmd)}")
                rows += json.loads(result.stdout.strip().splitlines()[-1])
                print(
                    f"done: {task} {image} {preset} in {rows[-1]['seconds']:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    import platform

    import torch

    print(
        f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}, {args.size}×{args.size} grey\n"
    )
    print_table(rows, partial)


if __name__ == "__main__":
    main()
