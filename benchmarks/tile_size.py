"""Benchmark: denoising a big image whole or in tiles of several sides (issue 5).

    python benchmarks/tile_size.py                                   # camera 512², 128 vs whole
    python benchmarks/tile_size.py --tiles 96:16,128:16,272:32,none --images camera,astronaut

Why: a DIP fit needs more steps the larger its image (``fast``, σ = 25, automatic stop: about
500 steps at 128², 1100 at 256², 2200 at 512²), so fitting small tiles one after the other can
cost less than one fit of the whole, and the tiles' networks each have the whole network's
capacity for a fraction of the pixels. Each ``--tiles`` entry is ``side:overlap`` (``auto``:
the library's choice; ``none``: whole). Per image and entry: the result's PSNR against the
ground truth, the steps of all tiles, the mean and range of steps per tile, the wall time from
the call to the result. The default preset and stop (``fast``, ``auto``), the benchmarks' σ = 25
noise (``early_stopping.degrade``), 2 threads unless ``--threads``. Wall times are only
comparable within one run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from early_stopping import degrade, psnr


def tile_options(spec: str) -> dict:
    """``restore_steps`` keywords for ``none`` (whole), ``auto`` or ``side[:overlap]``."""
    if spec in ("none", "auto"):
        return {"tile": None if spec == "none" else "auto"}
    side, _, overlap = spec.partition(":")
    return {"tile": int(side), "tile_overlap": int(overlap) if overlap else None}


def run_one(image: str, size: int, spec: str, every: int) -> dict:
    import napari_dip
    from napari_dip.samples import grey_crop

    kw = tile_options(spec)
    clean = grey_crop(image, size)
    noisy = degrade("denoise25", clean)[0]
    per_tile: list[int] = []
    done, before = 0, 0
    start = time.perf_counter()
    last = None
    for last in napari_dip.restore_steps(noisy, stop="auto", update_every=every, **kw):
        if getattr(last, "tiles_done", 0) != done:  # a tile has just finished
            done = last.tiles_done
            per_tile.append(last.step - before)
            before = last.step
    wall = time.perf_counter() - start
    assert last is not None
    return {
        "psnr": psnr(clean, last.result().astype(np.float64)),
        "steps": last.step,
        "tiles": getattr(last, "tiles_total", 1),
        "per_tile": per_tile or [last.step],
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", default="camera")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tiles", default="128:16,none", help="side:overlap, auto or none")
    parser.add_argument("--every", type=int, default=50, help="steps between snapshots")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"`{' '.join(['python', 'benchmarks/tile_size.py', *sys.argv[1:]])}`: "
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.size}×{args.size} grey, σ = 25, fast, stop auto\n"
    )
    print(
        "| image | tiles (side:overlap) | count | PSNR | steps, all tiles "
        "| per tile: mean (range) | wall |"
    )
    print("|---|---|---:|---:|---:|---|---:|")
    for image in args.images.split(","):
        for spec in args.tiles.split(","):
            r = run_one(image, args.size, spec, args.every)
            steps = r["per_tile"]
            print(
                f"| {image} | {spec} | {r['tiles']} | {r['psnr']:.2f} | {r['steps']} | "
                f"{np.mean(steps):.0f} ({min(steps)}–{max(steps)}) | {r['wall']:.0f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
