"""How long a restoration will take, said before it starts: a few real steps, timed.

A step's cost depends on the machine, the threads free right now, the device, the precision
and the image size in ways no formula predicts well (a 2-core laptop under load and an idle
workstation differ tenfold), so the estimate times the real network on the real size.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ._arrays import pad_reflect

__all__ = ["TimeEstimate", "describe", "estimate_time"]

# A denoising tile's lighter network (restore.tile_preset) stops sooner than its side alone
# says (1000 × 144 / 256 = 562 steps for fast): 270–410 steps per 144-px tile on average,
# measured on camera and astronaut at 256² and 512², σ = 25 (benchmarks/tile_size.py).
TILE_NETWORK_STEPS = 0.7


def _format(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class TimeEstimate:
    """Seconds per step, measured, and the step counts a run typically and at most takes.

    For an image restored in tiles, ``tiles`` says how many; the step counts then add up the
    steps of every tile, as the progress bar counts them.
    """

    seconds_per_step: float
    typical_steps: int
    max_steps: int
    tiles: int = 1

    @property
    def typical_seconds(self) -> float:
        return self.seconds_per_step * self.typical_steps

    @property
    def max_seconds(self) -> float:
        return self.seconds_per_step * self.max_steps

    def __str__(self) -> str:
        tiles = f", over {self.tiles} tiles" if self.tiles > 1 else ""
        if self.typical_steps >= self.max_steps:
            return f"about {_format(self.max_seconds)} ({self.max_steps} steps){tiles}"
        return (
            f"typically about {_format(self.typical_seconds)} (~{self.typical_steps} steps), "
            f"at most {_format(self.max_seconds)} ({self.max_steps} steps){tiles}"
        )

    def times(self, count: int) -> TimeEstimate:
        """``count`` such runs one after the other (a stack's slices): their steps add up."""
        typical, most = self.typical_steps * count, self.max_steps * count
        return TimeEstimate(self.seconds_per_step, typical, most)


def describe(one: TimeEstimate, slices: int = 1) -> str:
    """The estimate as the widget and the CLI say it: per slice and in all for a stack."""
    if slices == 1:
        return f"estimate: {one}"
    each = f" × {one.tiles} tiles each" if one.tiles > 1 else ""
    return f"estimate per slice: {one}\n{slices} slices{each}, in all: {one.times(slices)}"


def estimate_time(
    shape: tuple[int, ...],
    *,
    task: str = "denoise",
    factor: int | None = None,
    channels: int = 1,
    preset: str = "fast",
    steps: int | None = None,
    stop: str | None = "auto",
    device: str = "auto",
    precision: str = "auto",
    tile: int | str | None = "auto",
    tile_overlap: int | None = None,
    tile_workers: int | str = "auto",
    timed_steps: int = 3,
) -> TimeEstimate:
    """Estimate a 2D restoration's run time by timing ``timed_steps`` steps (after one warm-up
    step) of the real network at the real, padded size, on the real device.

    ``shape`` is the observed image's ``(H, W)``. An image that
    :func:`~napari_dip.restore_steps` would cut into tiles (same ``tile`` and ``tile_overlap``;
    by default above 1024×1024, or about 204×204 when ``fast`` denoises on a CPU) is timed on
    one tile, never whole, and the step counts cover every tile. "Typical" is the preset's step
    count for the task (where runs at about 256×256 usually end with an automatic stop; for
    denoising scaled by the side of what one fit restores, as measured: ``fast`` stops after
    about 500 steps at 128², 1100 at 256², 2200 at 512², and a denoising tile's lighter
    network after 0.7 times that), or the whole budget without a stop rule; "at most" is the
    step budget (``steps``, or the default ceiling).
    Tiles fitted side by side (``tile_workers``, as in :func:`~napari_dip.restore_steps`)
    are timed side by side: the seconds per step are then per step of any tile.
    Takes about ``timed_steps + 1`` steps of time.
    """
    import torch

    from . import engine
    from .restore import (
        _is_budget,
        _tile_plan,
        _tile_workers,
        default_steps,
        padding_rule,
        restore_default_threads,
        thread_share,
        tile_preset,
        use_threads,
    )

    chosen = engine.get_preset(preset)
    scale = int(factor or 1)
    h, w = (int(n) for n in shape[-2:])
    plan = _tile_plan((h, w), None, scale, tile, tile_overlap, chosen, device, task == "denoise")
    tiles = 1 if plan is None else len(plan)
    if plan is not None:  # every tile has the same size and network: time one
        h, w = min(plan.tile, h), min(plan.tile, w)
        chosen = tile_preset(chosen, plan, task)
    multiple, minimum = padding_rule(chosen.network.multiple, scale)
    padded, _ = pad_reflect(np.zeros((1, h, w), np.float32), multiple, minimum)
    ph, pw = padded.shape[1:]
    dev = engine.resolve_device(device)
    operator: engine.Operator = engine.Downsample(scale) if scale > 1 else engine.Identity()
    workers = 1 if plan is None else _tile_workers(tile_workers, dev, tiles)
    threads, share = torch.get_num_threads(), thread_share(workers, dev)
    y = torch.rand(1, channels, ph, pw, generator=torch.Generator().manual_seed(0))
    priors = [
        engine.build_prior(
            chosen,
            (ph * scale, pw * scale),
            channels,
            perturb_std=chosen.task(task).perturb_std,
            seed=i,
            device=dev,
        )
        for i in range(workers)
    ]
    problem = engine.Problem(y, operator).to(dev)

    def run(n: int) -> float:
        """Seconds for ``n`` steps of every prior, side by side (as the tiles would run)."""
        settings = engine.FitSettings(steps=n, snapshot_every=n, precision=precision)

        def fit(prior: engine.Prior) -> None:
            if share is not None:  # a worker thread, as a tile's
                use_threads(share)
            for _ in engine.fit(problem, prior, settings):  # one snapshot at the end: a sync
                pass

        start = time.perf_counter()
        if workers == 1:
            fit(priors[0])
        else:
            try:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(fit, priors))
            finally:
                if share is not None:
                    restore_default_threads(threads)
        return time.perf_counter() - start

    run(1)  # allocator, kernel selection
    per_step = run(timed_steps) / (timed_steps * workers)
    ceiling = steps if steps is not None else default_steps(preset, task, stop)
    # without a stop rule every step runs; with one, runs usually end near the preset's count
    # (at 256²; a denoising fit's steps grow with its side)
    typical = chosen.task(task).steps
    if task == "denoise":
        lighter = plan is not None and chosen.network != engine.get_preset(preset).network
        fewer = TILE_NETWORK_STEPS if lighter else 1.0
        typical = max(typical // 10, round(typical * math.sqrt(h * w) / 256 * fewer))
    typical = ceiling if _is_budget(stop) else min(typical, ceiling)
    return TimeEstimate(per_step, typical * tiles, ceiling * tiles, tiles)
