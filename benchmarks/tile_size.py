"""Benchmark: denoising a big image whole or in tiles of several sides (issue 5).

    python benchmarks/tile_size.py                                   # camera 512², 128 vs whole
    python benchmarks/tile_size.py --tiles 96:16,128:16,272:32,none --images camera,astronaut

Why: a DIP fit needs more steps the larger its image (``fast``, σ = 25, automatic stop: about
500 steps at 128², 1100 at 256², 2200 at 512²), so fitting small tiles one after the other can
cost less than one fit of the whole, and the tiles' networks each have the whole network's
capacity for a fraction of the pixels. Each ``--tiles`` entry is ``side:overlap`` (``auto``:
the library's choice; ``none``: whole), optionally ``@workers``: how many tiles are fitted at
once (``tile_workers``; default: the library's choice, one per torch thread on a CPU), e.g.
``auto,auto@1`` for side by side against one after the other. ``--coarsest 16,8`` repeats the
runs with each value of ``restore.COARSEST_SIDE``, the smallest side a denoising tile's
network keeps at its coarsest scale (the library's 16 keeps 3 of ``fast``'s 5 scales in
144-px tiles; 8 keeps 4), and ``--padding zeros,reflect`` with each value of
``restore.TILE_PADDING``, the tile network's convolution padding. Per image and entry: the
result's PSNR against the ground truth, also within 8 px of the image's border and inside
that frame (where zero padding would show), the steps of all tiles, the mean and range of
steps per tile, the wall time from the call to the result. The default preset and stop
(``fast``, ``auto``), the benchmarks' σ = 25 noise (``early_stopping.degrade``), 2 threads
unless ``--threads``. Wall times are only
comparable within one run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from early_stopping import degrade, psnr

FRAME = 8  # px: the border strip scored on its own


def tile_options(spec: str) -> dict:
    """``restore_steps`` keywords for ``none`` (whole), ``auto`` or ``side[:overlap]``, each
    optionally ``@workers`` (tiles fitted at once; default ``tile_workers="auto"``)."""
    spec, _, workers = spec.partition("@")
    kw: dict = {"tile_workers": int(workers)} if workers else {}
    if spec in ("none", "auto"):
        return {"tile": None if spec == "none" else "auto", **kw}
    side, _, overlap = spec.partition(":")
    return {"tile": int(side), "tile_overlap": int(overlap) if overlap else None, **kw}


def run_one(image: str, size: int, spec: str, every: int) -> dict:
    import napari_dip
    from napari_dip.samples import grey_crop

    kw = tile_options(spec)
    clean = grey_crop(image, size)
    noisy = degrade("denoise25", clean)[0]
    per_tile: list[int] = []
    done = 0
    start = time.perf_counter()
    last = None
    for last in napari_dip.restore_steps(noisy, stop="auto", update_every=every, **kw):
        if getattr(last, "tiles_done", 0) != done:  # a tile has just finished: it reports
            done = last.tiles_done
            per_tile.append(last.tile_step)
    wall = time.perf_counter() - start
    assert last is not None
    result = last.result().astype(np.float64)
    frame = np.ones(clean.shape, bool)
    frame[FRAME:-FRAME, FRAME:-FRAME] = False
    return {
        "psnr": psnr(clean, result),
        "frame": psnr(clean[frame], result[frame]),
        "inside": psnr(clean[~frame], result[~frame]),
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
    parser.add_argument(
        "--coarsest", default=None, help="values of restore.COARSEST_SIDE to run, e.g. 16,8"
    )
    parser.add_argument(
        "--padding", default=None, help="values of restore.TILE_PADDING, e.g. zeros,reflect"
    )
    args = parser.parse_args()

    import torch

    from napari_dip import restore

    coarsest_sides = (args.coarsest or str(restore.COARSEST_SIDE)).split(",")
    paddings = (args.padding or restore.TILE_PADDING).split(",")

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"`{' '.join(['python', 'benchmarks/tile_size.py', *sys.argv[1:]])}`: "
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.size}×{args.size} grey, σ = 25, fast, stop auto\n"
    )
    print(
        "| image | tiles (side:overlap@workers) | coarsest scale ≥ | padding | count | PSNR "
        f"| frame ({FRAME} px) / inside | steps, all tiles | per tile: mean (range) | wall |"
    )
    print("|---|---|---:|---|---:|---:|---|---:|---|---:|")
    for image in args.images.split(","):
        for coarsest in coarsest_sides:
            restore.COARSEST_SIDE = int(coarsest)
            for padding in paddings:
                restore.TILE_PADDING = padding
                for spec in args.tiles.split(","):
                    r = run_one(image, args.size, spec, args.every)
                    steps = r["per_tile"]
                    print(
                        f"| {image} | {spec} | {coarsest} px | {padding} | {r['tiles']} | "
                        f"{r['psnr']:.2f} | {r['frame']:.2f} / {r['inside']:.2f} | "
                        f"{r['steps']} | {np.mean(steps):.0f} ({min(steps)}–{max(steps)}) | "
                        f"{r['wall']:.0f} s |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
