"""``python -m benchmarks NAME [options]``: run one of the benchmarks and record its result."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {
    "quality": "against classical methods and peers, per task (PSNR, SSIM, seconds)",
    "stopping": "the stop rules against the best step in hindsight, per task",
    "speed": "seconds and steps per task and size, and batch throughput per worker count",
    "uncertainty": "calibration of the uncertainty maps (coverage of ±2σ, rank correlation)",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run one benchmark and record its result in benchmarks/results/.",
        epilog="benchmarks: " + "; ".join(f"{k}: {v}" for k, v in BENCHMARKS.items()),
    )
    parser.add_argument("name", choices=BENCHMARKS, metavar="NAME")
    first, _ = parser.parse_known_args(argv[:1])
    module = importlib.import_module(f"benchmarks.{first.name}")
    sub = argparse.ArgumentParser(
        prog=f"python -m benchmarks {first.name}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    record = module.run(args)
    print(f"wrote benchmarks/results/{record['name']}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
