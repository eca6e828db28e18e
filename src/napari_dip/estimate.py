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
from typing import Any

import numpy as np

from ._arrays import pad_reflect

__all__ = ["TimeEstimate", "describe", "estimate_time"]

# A denoising tile's lighter network (pipeline.plan.tile_preset) stops sooner than its side alone
# says (1000 × 144 / 256 = 562 steps for fast): 270–410 steps per 144-px tile on average,
# measured on camera and astronaut at 256² and 512², σ = 25 (benchmarks/tile_size.py).
TILE_NETWORK_STEPS = 0.7
# Inpainting and super-resolution in light tiles, stopped by smoothed self-validation: steps
# per 144-px tile on the tuning crops (50 % random pixels: 1114 on average, fitted whole at
# 144², replayed; ×4 to 256²: 925–985), not the preset's 2000.
LIGHT_TILE_STEPS = {"inpaint": 1100, "super_resolve": 1000}


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

    Examples
    --------
    >>> from napari_dip import TimeEstimate
    >>> one = TimeEstimate(seconds_per_step=0.02, typical_steps=1500, max_steps=6000)
    >>> print(one)
    typically about 30 s (~1500 steps), at most 2 min 00 s (6000 steps)
    >>> one.times(8).max_steps                  # a stack of 8 slices, one after the other
    48000
    """

    seconds_per_step: float
    typical_steps: int
    max_steps: int
    tiles: int = 1
    fits_per_tile: int = 1  # ensemble members (and SURE's second network) per tile

    @property
    def typical_seconds(self) -> float:
        return self.seconds_per_step * self.typical_steps

    @property
    def max_seconds(self) -> float:
        return self.seconds_per_step * self.max_steps

    def __str__(self) -> str:
        tiles = f", over {self.tiles} tiles" if self.tiles > 1 else ""
        if self.fits_per_tile > 1:
            tiles += f", {self.fits_per_tile} fits {'each' if self.tiles > 1 else 'in all'}"
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
    """The estimate as the widget and the CLI say it: per slice and in all for a stack.

    Examples
    --------
    >>> from napari_dip import TimeEstimate
    >>> from napari_dip.estimate import describe
    >>> print(describe(TimeEstimate(0.02, 1500, 6000), slices=4))
    estimate per slice: typically about 30 s (~1500 steps), at most 2 min 00 s (6000 steps)
    4 slices, in all: typically about 2 min 00 s (~6000 steps), at most 8 min 00 s (24000 steps)
    """
    if slices == 1:
        return f"estimate: {one}"
    each = f" × {one.tiles} tiles each" if one.tiles > 1 else ""
    return f"estimate per slice: {one}\n{slices} slices{each}, in all: {one.times(slices)}"


class _Shape:
    """Stands for an image of ``shape`` that is never read (a plan needs only its shape)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape, self.dtype = shape, np.dtype(np.float32)

    def __getitem__(self, index: object) -> np.ndarray:
        raise RuntimeError("an estimate reads no pixels")


def estimate_time(
    shape: tuple[int, ...],
    *,
    task: str = "denoise",
    factor: int | None = None,
    channels: int = 1,
    timed_steps: int = 3,
    **options: Any,
) -> TimeEstimate:
    """Estimate a 2D restoration's run time by timing ``timed_steps`` steps (after one warm-up
    step) of the real network at the real, padded size, on the real device.

    ``shape`` is the observed image's ``(H, W)``; ``options`` are the run's (``preset``,
    ``steps``, ``stop``, ``device``, ``precision``, ``tile``, ``tile_overlap``, ``workers``).
    An image the run would cut into tiles is timed on one tile, with as many fitted side by
    side as the run would, and the step counts cover every tile. "Typical" is where runs
    usually end with an automatic stop (the preset's step count, for denoising scaled by the
    side of what one fit restores; without a stop rule, the whole budget); "at most" is the
    step budget. Takes about ``timed_steps + 1`` steps of time.

    Examples
    --------
    >>> from napari_dip import estimate_time
    >>> estimate = estimate_time((64, 64), steps=100, stop="none", timed_steps=1)
    >>> estimate.max_steps
    100
    """
    import torch

    from . import engine
    from .pipeline.fitting import padding_rule
    from .pipeline.plan import default_steps, make_plan
    from .pipeline.request import make_request
    from .pipeline.threads import use_threads

    h, w = (int(n) for n in shape[-2:])
    extra: dict[str, Any] = {}
    if task == "inpaint":
        extra["mask"] = np.zeros((h, w), bool)
    if task == "deconvolve":
        extra["psf"] = np.ones((1, 1), np.float32)
    image = _Shape((h, w) if channels == 1 else (h, w, channels))
    request = make_request(
        image,
        task=task,
        factor=factor,
        channel_axis=None if channels == 1 else -1,
        **extra,
        **options,
    )
    plan = make_plan(request)
    tiles = plan.tiles_per_part
    if plan.tiles is not None:  # every tile has the same size and network: time one
        h, w = min(plan.tiles.tile, h), min(plan.tiles.tile, w)
    chosen, scale = plan.preset, request.factor
    multiple, minimum = padding_rule(chosen.network.multiple, scale)
    padded, _ = pad_reflect(np.zeros((1, h, w), np.float32), multiple, minimum)
    ph, pw = padded.shape[1:]
    dev = plan.device
    operator: engine.Operator = engine.Downsample(scale) if scale > 1 else engine.Identity()
    workers = plan.workers
    y = torch.rand(1, channels, ph, pw, generator=torch.Generator().manual_seed(0))
    priors = [
        engine.build_prior(
            chosen,
            (ph * scale, pw * scale),
            channels,
            perturb_std=plan.perturb_std,
            seed=i,
            device=dev,
        )
        for i in range(workers)
    ]
    problem = engine.Problem(y, operator).to(dev)
    precision = request.options.precision

    def run(n: int) -> float:
        """Seconds for ``n`` steps of every prior, side by side (as the tiles would run)."""
        settings = engine.FitSettings(steps=n, snapshot_every=n, precision=precision)

        def fit(prior: engine.Prior) -> None:
            if plan.threads is not None:  # a worker thread, as a tile's
                use_threads(plan.threads)
            for _ in engine.fit(problem, prior, settings):  # one snapshot at the end: a sync
                pass

        start = time.perf_counter()
        if workers == 1:
            fit(priors[0])
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(fit, priors))
        return time.perf_counter() - start

    run(1)  # allocator, kernel selection
    per_step = run(timed_steps) / (timed_steps * workers)
    stop = request.options.stop
    budget = stop == "none" or isinstance(stop, engine.FixedBudget)
    ceiling = plan.settings.steps
    typical = (
        engine.get_preset(request.options.preset)
        .task("denoise" if task == "deconvolve" else task)
        .steps
    )
    own = engine.get_preset(request.options.preset).network
    lighter = plan.tiles is not None and chosen.network != own
    if task == "denoise":
        fewer = TILE_NETWORK_STEPS if lighter else 1.0
        typical = max(typical // 10, round(typical * math.sqrt(h * w) / 256 * fewer))
    elif lighter and task in LIGHT_TILE_STEPS and request.options.stop == "auto":
        typical = LIGHT_TILE_STEPS[task]
    typical = ceiling if budget else min(typical, ceiling)
    del default_steps
    # ensemble members and a SURE pair's second network add their steps
    fits = tiles * plan.members * (2 if plan.rule.wants_members else 1)
    return TimeEstimate(per_step, typical * fits, ceiling * fits, tiles, fits // tiles)
