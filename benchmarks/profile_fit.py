"""Benchmark: where a fit step's time goes, and whether ``torch.compile`` pays off here.

    python benchmarks/profile_fit.py                       # fast preset, 256×256, 2 threads
    python benchmarks/profile_fit.py --preset paper --size 128 --no-compile

Part 1 profiles ``--steps`` steps of the real fit loop (stop rule watching, as in a default
run) with ``torch.profiler`` and prints the operators by their own CPU time. Part 2 times the
same loop eager and with the network under ``torch.compile`` (default mode and
max-autotune without CUDA graphs), in float32 and bfloat16, and prints the compile time.
"""

from __future__ import annotations

import argparse
import platform
import time


def setup(preset_name: str, size: int, device: str):
    import torch

    from napari_dip import engine

    dev = engine.resolve_device(device)
    preset = engine.get_preset(preset_name)
    y = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))
    prior = engine.build_prior(
        preset,
        (size, size),
        1,
        perturb_std=preset.task("denoise").perturb_std,
        seed=0,
        device=dev,
    )
    return engine.Problem(y, engine.Identity()).to(dev), prior


def steps(problem, prior, n: int, precision: str) -> float:
    """Run ``n`` steps of the fit loop with the default stop rule watching; seconds."""
    from napari_dip import engine

    settings = engine.FitSettings(steps=n, snapshot_every=25, precision=precision)
    start = time.perf_counter()
    for _ in engine.fit(problem, prior, settings, stop_rule=engine.make_stop_rule("auto")):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="of the profiled run")
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--no-compile", action="store_true", help="skip part 2")
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; preset {args.preset}, {args.size}×{args.size} grey\n"
    )
    problem, prior = setup(args.preset, args.size, args.device)
    steps(problem, prior, 10, args.precision)  # warm-up: allocator, kernel choice
    activities = [ProfilerActivity.CPU]
    if problem.y.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        steps(problem, prior, args.steps, args.precision)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print(f"## Part 1: operators by own CPU time, {args.steps} steps, precision {args.precision}\n")
    print(f"total own CPU time {total / 1e3 / args.steps:.1f} ms per step (profiler on)\n")
    print("| operator | calls per step | ms per step | share |")
    print("|---|---:|---:|---:|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.rows]:
        print(
            f"| {e.key} | {e.count / args.steps:.0f} | "
            f"{e.self_cpu_time_total / 1e3 / args.steps:.2f} | "
            f"{100 * e.self_cpu_time_total / total:.1f} % |"
        )
    if args.no_compile:
        return
    print("\n## Part 2: eager against torch.compile (the network), 40 timed steps\n")
    print("| precision | mode | compile + 10 warm-up steps (s) | ms per step |")
    print("|---|---|---:|---:|")
    for precision in ("float32", "bfloat16"):
        for mode in ("eager", "default", "max-autotune-no-cudagraphs"):
            problem, prior = setup(args.preset, args.size, args.device)
            if mode != "eager":
                prior.net = torch.compile(prior.net, mode=None if mode == "default" else mode)
            try:
                warm = steps(problem, prior, 10, precision)
                per_step = steps(problem, prior, 40, precision) / 40
            except Exception as err:  # a backend that fails here is a result too
                print(f"| {precision} | {mode} | failed: {type(err).__name__} | – |")
                continue
            print(f"| {precision} | {mode} | {warm:.1f} | {per_step * 1000:.1f} |", flush=True)


if __name__ == "__main__":
    main()
