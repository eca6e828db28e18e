"""Benchmark: time and peak memory of big inputs — a 2048×2048 uint16 image in tiles, a lazy
(dask) 4096×4096 one, and a 20-slice 512×512 stack slice by slice and as one 3D volume.

    python benchmarks/big.py                       # 5 steps per tile/slice, 2 tiles/slices
    python benchmarks/big.py --steps 2 --units 1   # smoke test
    python benchmarks/big.py --steps 50 --units 3 --device cuda

A full DIP run of these inputs takes hours on a CPU (25 tiles × 1000+ steps), so each case runs
``--steps`` steps on the first ``--units`` tiles or slices only; the time of the full run is
extrapolated from that — (wall time per tile or slice + the median seconds per step × the
steps left to the preset's budget) × tiles or slices — and labelled as an estimate. Memory
does not grow with the tiles or slices done: the output is allocated once and one tile's or
slice's network exists at a time, so the peak after a few is the peak of the full run. Each
case runs in its own process so its peak memory is its own (peak RSS, Python and torch
included; peak allocated GPU memory on CUDA). Intensities are photon-count-like
(:func:`napari_dip.samples.photon_limited`) with Gaussian (MSE) fitting.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

CASES = {
    "image2048": "2048×2048 image, tiled",
    "dask4096": "4096×4096 dask image, tiled, read lazily",
    "slices": "20×512×512 stack, slice by slice",
    "volume": "20×512×512 stack, one 3D volume",
}


def _plane(size: int, seed: int = 0) -> np.ndarray:
    """A photon-limited uint16 plane of ``size``² built from one 512² synthetic field (making a
    large one directly is slow), with fresh Poisson noise everywhere."""
    from napari_dip.samples import photon_limited

    _, clean = photon_limited((512, 512), seed=0)
    reps = -(-size // 512)
    expected = np.tile(clean - 100.0, (reps, reps))[:size, :size]
    counts = np.random.default_rng(seed).poisson(expected)
    return (100 + counts).astype(np.uint16)


def _lazy_plane(size: int):
    """A dask array of ``size``² made block by block when read (512² blocks): never whole."""
    import dask.array as da

    base = _plane(512)

    def block(block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        seed = r0 * size + c0
        noise = np.random.default_rng(seed).integers(0, 3, (r1 - r0, c1 - c0))
        return (base[: r1 - r0, : c1 - c0] + noise).astype(np.uint16)

    chunks = ((512,) * (size // 512),) * 2
    return da.map_blocks(block, chunks=chunks, dtype=np.uint16)


def _stack(depth: int = 20, size: int = 512) -> np.ndarray:
    base = _plane(size)
    rng = np.random.default_rng(1)
    planes = [np.roll(base, 3 * z, axis=1).astype(np.int64) for z in range(depth)]
    return np.stack([100 + rng.poisson(np.maximum(p - 100, 0)) for p in planes]).astype(np.uint16)


def run_one(case: str, preset: str, steps: int, units: int, device: str) -> dict:
    """One case: make the input, run ``steps`` steps on the first ``units`` tiles/slices."""
    import torch

    import napari_dip
    from napari_dip.engine import resolve_device
    from napari_dip.restore import TiledSnapshot, default_steps

    kwargs: dict = {}
    if case == "image2048":
        image = _plane(2048)
    elif case == "dask4096":
        image = _lazy_plane(4096)
    else:
        image = _stack()
        kwargs = {"axes": "ZYX", "mode": "slices" if case == "slices" else "volume"}
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    calls: list[float] = []  # when each step ended: the fit polls should_stop once per step

    def step_ended() -> bool:
        calls.append(time.perf_counter())
        return False

    start = time.perf_counter()
    last = None
    snapshots = napari_dip.restore_steps(
        image,
        preset=preset,
        steps=steps,
        stop="none",
        update_every=10**9,
        device=device,
        should_stop=step_ended,
        **kwargs,
    )
    for last in snapshots:
        done = last.tiles_done if isinstance(last, TiledSnapshot) else len(last.reasons)
        if done >= units and last.stop_reason is None:
            snapshots.close()  # the first `units` tiles/slices are enough to time and measure
            break
    seconds = time.perf_counter() - start
    assert last is not None
    total = last.tiles_total if isinstance(last, TiledSnapshot) else last.pieces
    ran = min(units, total)
    full_steps = default_steps(preset, "denoise", "none")
    # the median gap between step ends is a step; the gaps across tiles/slices also hold the
    # next one's set-up, which the wall time per tile/slice carries into the estimate
    s_step = float(np.median(np.diff(calls))) if len(calls) > 1 else seconds / max(last.step, 1)
    estimate = total * (seconds / ran + s_step * max(full_steps - steps, 0))
    if dev.type == "cuda":
        gpu_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        gpu_mb = None
    return {
        "case": CASES[case],
        "shape": "×".join(map(str, image.shape)) + f" {np.dtype(image.dtype).name}",
        "units": f"{ran} of {total} {'tiles' if 'axes' not in kwargs else 'pieces'}",
        "steps": steps,
        "steps_run": last.step,
        "seconds": seconds,
        "s_per_step": s_step,
        "estimate_h": estimate / 3600,
        "full_steps": full_steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": gpu_mb,
        "device": str(dev),
        "threads": torch.get_num_threads(),
    }


def print_table(rows: list[dict]) -> None:
    print(
        "| case | shape, dtype | ran | steps each | s/step | wall s | peak RSS MB "
        "| peak GPU MB | full run (estimate) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "todo" in r:
            print(f"| {r['case']} | {r['shape']} | TODO: {r['todo']} | | | | | | |")
            continue
        gpu = "–" if r["peak_gpu_mb"] is None else f"{r['peak_gpu_mb']:.0f}"
        print(
            f"| {r['case']} | {r['shape']} | {r['units']} | {r['steps']} | "
            f"{r['s_per_step']:.3f} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {gpu} | "
            f"≈ {r['estimate_h']:.1f} h at {r['full_steps']} steps each (estimate) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--steps", type=int, default=5, help="steps per tile or slice")
    parser.add_argument("--units", type=int, default=2, help="tiles or slices to run per case")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--one", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    if args.one:
        print(json.dumps(run_one(args.one, args.preset, args.steps, args.units, args.device)))
        return

    from napari_dip._axes import MODES

    rows = []
    for case in args.cases.split(","):
        if case == "volume" and "volume" not in MODES:
            rows.append({"case": CASES[case], "shape": "20×512×512", "todo": "no 3D mode yet"})
            continue
        cmd = [sys.executable, __file__, "--one", case, "--preset", args.preset]
        cmd += ["--steps", str(args.steps), "--units", str(args.units), "--device", args.device]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode:
            print(result.stderr, file=sys.stderr)
            raise SystemExit(f"benchmark failed: {' '.join(cmd)}")
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(f"done: {case} in {rows[-1]['seconds']:.0f} s", file=sys.stderr)
    first = next((r for r in rows if "todo" not in r), {})
    print(
        f"\npreset {args.preset}, device {first.get('device')}, {first.get('threads')} torch "
        f"threads; {args.steps} steps on the first {args.units} tiles/slices of each case\n"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
