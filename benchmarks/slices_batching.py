"""Is it faster to fit the slices of a stack together than one after the other?

DIP fits one network per slice, so batching slices means batching *different* networks. Timed
per optimisation step of all ``N`` slices (forward, backward, Adam), ``fast`` preset:

* ``sequential``: N networks, one step each (what ``mode="slices"`` does);
* ``vmap``: the N networks' parameters stacked and run with ``torch.func.vmap`` over
  ``functional_call`` (exactly N independent fits: same outputs as sequential);
* ``shared``: one network on a batch of N (not DIP: BatchNorm mixes the slices; only the
  upper bound of what batching could gain).

Usage: ``python benchmarks/slices_batching.py --slices 8 --size 128 --steps 10 --repeats 5
--threads 2``; the timings are interleaved, so load from other jobs slows every method alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.func import functional_call, replace_all_batch_norm_modules_, stack_module_state

from napari_dip import engine


def _nets(n: int, size: int) -> list[torch.nn.Module]:
    preset = engine.get_preset("fast")
    return [
        engine.build_prior(
            preset, (size, size), 1, perturb_std=0.0, seed=i, device=torch.device("cpu")
        )
        for i in range(n)
    ]


def _setup_sequential(n: int, size: int):
    priors = _nets(n, size)
    y = torch.rand(n, 1, 1, size, size)
    opts = [torch.optim.Adam(p.parameters(), lr=0.01) for p in priors]

    def step() -> None:
        for prior, opt, target in zip(priors, opts, y, strict=True):
            opt.zero_grad()
            torch.mean((prior() - target) ** 2).backward()
            opt.step()

    return step


def _setup_vmap(n: int, size: int):
    priors = _nets(n, size)
    nets = [p.net for p in priors]
    for net in nets:
        replace_all_batch_norm_modules_(net)  # no running stats: training output unchanged
    params, buffers = stack_module_state(nets)
    z = torch.stack([p.z for p in priors])
    y = torch.rand(n, 1, 1, size, size)
    batched = torch.func.vmap(lambda p, b, zi: functional_call(nets[0], (p, b), (zi,)))
    opt = torch.optim.Adam(params.values(), lr=0.01)

    def step() -> None:
        opt.zero_grad()
        # the sum of per-slice means: each network gets exactly its own slice's gradient
        ((batched(params, buffers, z) - y) ** 2).mean(dim=(1, 2, 3, 4)).sum().backward()
        opt.step()

    return step


def _setup_shared(n: int, size: int):
    prior = _nets(1, size)[0]
    z = prior.z.expand(n, -1, -1, -1).contiguous()
    y = torch.rand(n, 1, size, size)
    opt = torch.optim.Adam(prior.parameters(), lr=0.01)

    def step() -> None:
        opt.zero_grad()
        torch.mean((prior.net(z) - y) ** 2).backward()
        opt.step()

    return step


SETUPS = {"sequential": _setup_sequential, "vmap": _setup_vmap, "shared": _setup_shared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timings per method")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{args.slices} slices of {args.size}², {args.threads} threads, best and median of "
        f"{args.repeats} interleaved timings of {args.steps} steps"
    )
    steps = {name: setup(args.slices, args.size) for name, setup in SETUPS.items()}
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):  # interleaved: a busy machine slows every method alike
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps)
    for name, values in times.items():
        print(
            f"{name:10} best {min(values):.3f} s, median {statistics.median(values):.3f} s "
            "per step of all slices"
        )


if __name__ == "__main__":
    main()
