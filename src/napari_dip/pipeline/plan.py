"""A plan: a request cut into independent pieces, with everything each piece is fitted with.

A job (one request: an image or a stack) has *parts* — the slices, frames or volumes that are
normalised and fitted on their own (one part for a plain image) — and each part has *pieces*:
its tiles, or the part whole. Pieces are independent fits; an executor may run them in any
order and on any machine, and the assembly puts them back in plan order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from .. import engine
from .request import Request
from .tiles import (
    HEAVY_CHANNELS,
    MIN_TILE,
    TILE_WORKERS,
    TilePlan,
    default_tile,
    plan_tiles,
    untiled_limit,
)

__all__ = [
    "AUTO_BUDGET_FACTOR",
    "JobPlan",
    "Piece",
    "default_steps",
    "make_plan",
    "thread_share",
    "tile_preset",
    "volume_preset",
]

# With an automatic stop the step budget is only a ceiling: room for a late peak and patience.
AUTO_BUDGET_FACTOR = 3
# Light tiles (denoising, super-resolution, inpainting small holes): a light network's
# coarsest scale keeps at least this side, and its convolutions pad with this (``tile_preset``).
COARSEST_SIDE = 16
TILE_PADDING = "zeros"
MIN_Z_PER_LEVEL = 4  # a 3D scale halves Z only while at least this many slices remain
# Inpainting gets the denoising tiles and their light network too while every missing pixel
# lies within this many pixels of a known one (the largest Euclidean distance: 50 % random
# pixels 2.2, 80 % 4.1, 90 % 5.4; the benchmarks' 8–24 px blocks 10–11).
LIGHT_HOLE_REACH = 6.0


def _task_settings(preset: engine.Preset, task: str) -> engine.TaskSettings:
    """The preset's settings for ``task``; deconvolution fits like denoising unless the preset
    says otherwise."""
    if task == "deconvolve" and task not in preset.tasks:
        return preset.task("denoise")
    return preset.task(task)


def _budget_only(stop: object) -> bool:
    return stop is None or stop in ("none", "budget") or isinstance(stop, engine.FixedBudget)


def default_steps(preset: str | engine.Preset, task: str, stop: object = "auto") -> int:
    """The default step budget: the preset's for a fixed budget, ``AUTO_BUDGET_FACTOR`` times
    that as a ceiling when a rule stops the run."""
    steps = _task_settings(engine.get_preset(preset), task).steps
    return steps if _budget_only(stop) else AUTO_BUDGET_FACTOR * steps


def z_levels(depth: int, scales: int) -> int:
    """How many of a 3D network's finest scales also halve Z for a volume ``depth`` deep: only
    while ``MIN_Z_PER_LEVEL`` slices remain (Z-stacks are short and coarse in Z)."""
    levels = 0
    while levels < scales and depth / 2 ** (levels + 1) >= MIN_Z_PER_LEVEL:
        levels += 1
    return levels


def volume_preset(preset: engine.Preset, depth: int) -> engine.Preset:
    """``preset`` with its network made 3D (Conv3d) for a volume ``depth`` slices deep."""
    net = preset.network
    levels = z_levels(depth, net.scales if isinstance(net, engine.SkipConfig) else net.stages)
    return replace(preset, network=replace(net, dims=3, z_scales=levels))


def hole_reach(request: Request) -> float:
    """How far the farthest missing pixel of an inpainting request lies from a known one, in
    pixels (0: nothing missing). A stack's mask of more than (H, W) is not measured: inf."""
    from scipy import ndimage

    if request.known is not None:
        planes = [~plane for plane in request.known]
    elif isinstance(request.mask, np.ndarray) and request.mask.ndim == 2:
        planes = [request.mask != 0]
    else:
        return math.inf
    reach = 0.0
    for missing in planes:
        if missing.all():
            return math.inf
        if missing.any():
            reach = max(reach, float(ndimage.distance_transform_edt(missing).max()))
    return reach


def light_tiles(request: Request) -> bool:
    """Whether a light preset on a CPU may fit ``request`` in small tiles with the tile
    network (:func:`tile_preset`): denoising and super-resolution always (their operators
    reach a few pixels); inpainting while no hole reaches further than ``LIGHT_HOLE_REACH``
    from the known pixels (a wider one needs the full network's reach and context)."""
    if request.task in ("denoise", "super_resolve"):
        return True
    return request.task == "inpaint" and hole_reach(request) <= LIGHT_HOLE_REACH


def tile_preset(preset: engine.Preset, plan: TilePlan, light: bool) -> engine.Preset:
    """The preset a tile of ``plan`` is fitted with: where ``light`` (:func:`light_tiles`)
    with a light 2D skip network, without the coarsest scales that would be under
    ``COARSEST_SIDE`` pixels and with ``TILE_PADDING``; otherwise ``preset`` itself. A small
    tile's coarsest scales are mostly padding and cost a step's fixed overhead; zero padding
    folds into the convolution."""
    net = preset.network
    side = min(plan.tile, *plan.shape) * plan.factor
    if (
        not light
        or not isinstance(net, engine.SkipConfig)
        or net.dims != 2
        or net.down[0] >= HEAVY_CHANNELS
    ):
        return preset
    keep = max(1, min(net.scales, int(math.log2(side / COARSEST_SIDE))))
    network = replace(net.finest(keep), padding=TILE_PADDING)
    return preset if network == net else replace(preset, network=network)


def _width(preset: engine.Preset) -> int:
    net = preset.network
    return max(getattr(net, "down", (0,))[0], getattr(net, "channels", (0,))[-1])


def _tiles(
    shape: tuple[int, int], request: Request, preset: engine.Preset, kind: str, light: bool
) -> TilePlan | None:
    """The tiles of a part of spatial ``shape``, or None to fit it whole (see ``tile``);
    ``light``: see :func:`light_tiles`."""
    tile, overlap = request.options.tile, request.options.tile_overlap
    if tile is None:
        return None
    side, default_overlap = default_tile(_width(preset), kind, request.factor, light)
    if isinstance(tile, str):
        if tile != "auto":
            raise ValueError(f"tile must be 'auto', None or an integer >= {MIN_TILE}, got {tile!r}")
        if shape[0] * shape[1] <= untiled_limit(_width(preset), request.factor, kind, light):
            return None
    else:
        side = tile
        default_overlap = tile // 8 if isinstance(tile, int) and not isinstance(tile, bool) else 0
    plan = plan_tiles(shape, side, default_overlap if overlap is None else overlap, request.factor)
    return plan if len(plan) > 1 else None


def thread_share(workers: int, device: torch.device) -> int | None:
    """torch threads for each of ``workers`` fits run side by side on ``device`` (this
    thread's count shared out), or None to leave the counts alone (one fit, or not a CPU)."""
    if workers <= 1 or device.type != "cpu":
        return None
    return max(1, torch.get_num_threads() // workers)


# Ensemble members: member m fits the input turned by dihedral transform m % 8 (rotations and
# flips) from seed + m // 8, so the first eight differ by their view of the image.
TRANSFORMS = 8


@dataclass(frozen=True)
class Piece:
    """One independent fit: ``tile`` (plan order; None: the part whole) of ``part`` of job
    ``job``, fitted from ``seed``; ``member`` of an ensemble (see ``TRANSFORMS``)."""

    job: int
    part: int
    tile: int | None
    seed: int
    member: int = 0

    @property
    def transform(self) -> int:
        return self.member % TRANSFORMS


@dataclass(frozen=True, eq=False)
class JobPlan:
    """A request cut into parts and pieces, with the fit settings every piece shares.

    ``parts`` holds each part's index into the stack (``None``: the plain image); ``tiles``
    (the same for every part) or None; ``preset`` is the one pieces are fitted with (the tile
    or volume version); ``rule`` the stop rule each piece gets a copy of. ``workers`` pieces
    run at once, each on ``threads`` torch threads (None: as they are).
    """

    request: Request
    number: int
    parts: tuple[tuple | None, ...]
    tiles: TilePlan | None
    preset: engine.Preset
    settings: engine.FitSettings
    rule: engine.StopRule
    perturb_std: float
    device: torch.device
    workers: int
    threads: int | None
    psf: Any = None  # deconvolution: the PSF on the network's output grid
    members: int = 1  # ensemble members per tile (or per part fitted whole)

    @property
    def tiles_per_part(self) -> int:
        return 1 if self.tiles is None else len(self.tiles)

    @property
    def pieces_per_part(self) -> int:
        return self.tiles_per_part * self.members

    @property
    def piece_count(self) -> int:
        return len(self.parts) * self.pieces_per_part

    def pieces_of(self, part: int) -> Iterator[Piece]:
        """The pieces of ``part`` in plan order: its tiles row by row (or the part whole),
        each tile's ensemble members in turn."""
        seed = self.request.options.seed
        tiles = [None] if self.tiles is None else range(len(self.tiles))
        for tile in tiles:
            for member in range(self.members):
                yield Piece(self.number, part, tile, seed + member // TRANSFORMS, member)

    def pieces(self) -> Iterator[Piece]:
        """Every piece in plan order: part by part."""
        for part in range(len(self.parts)):
            yield from self.pieces_of(part)


def _workers(value: Any, device: torch.device, tiles: TilePlan | None, members: int) -> int:
    """ "auto": tiles or ensemble members side by side on a CPU, else one at a time."""
    if isinstance(value, str):
        pieces = (1 if tiles is None else len(tiles)) * members
        if pieces == 1 or device.type != "cpu":
            return 1
        return max(1, min(torch.get_num_threads(), TILE_WORKERS, pieces))
    return int(value)


def make_plan(request: Request, number: int = 0) -> JobPlan:
    """Plan ``request``: resolve the preset, device, step budget and stop rule, and cut it
    into parts and pieces. Raises ``ValueError`` for what no piece could be fitted with."""
    o = request.options
    chosen = engine.get_preset(o.preset)
    task = _task_settings(chosen, request.task)
    rule = engine.make_stop_rule(o.stop, task=request.task)
    steps = o.steps
    if steps is None:
        steps = task.steps if _budget_only(o.stop) else AUTO_BUDGET_FACTOR * task.steps
    settings = engine.FitSettings(
        steps=steps,
        lr=chosen.lr if o.lr is None else o.lr,
        betas=chosen.betas,
        ema=chosen.ema,
        snapshot_every=o.update_every,
        precision=o.precision,
    )
    device = engine.resolve_device(o.device)
    engine.autocast_dtype(device, o.precision)  # a precision the device can't run fails now
    stack, shape = request.stack, tuple(request.image.shape)
    preset = chosen
    tiles = None
    if stack is not None and stack.mode == "volume":
        if o.stop == "sharpness" or isinstance(o.stop, engine.SharpnessRatio):
            raise ValueError("the sharpness stop rule is 2D only; use 'wmv' or 'emv' for volumes")
        if chosen.input_kind != "noise":
            raise ValueError("volumes need a preset with a noise input (not a meshgrid)")
        preset = volume_preset(chosen, stack.size("Z"))
    else:
        if stack is not None:
            hw = (stack.size("Y"), stack.size("X"))
        else:
            hw = tuple(n for i, n in enumerate(shape) if i != request.channel_axis)
        light = request.options.tile is not None and light_tiles(request)
        tiles = _tiles(hw, request, chosen, device.type, light)  # type: ignore[arg-type]
        if tiles is not None:
            preset = tile_preset(chosen, tiles, light)
    if request.fit_state is not None and tiles is not None:
        raise ValueError("_fit_state continues a whole-image run; pass tile=None")
    parts = tuple(stack.indices()) if stack is not None else (None,)
    workers = _workers(o.workers, device, tiles, o.ensemble)
    psf = None
    if request.psf is not None:
        from ..psf import resample_psf

        psf = resample_psf(request.psf, request.factor)
        if tiles is not None and max(request.psf.shape[-2:]) > tiles.tile // 2:
            raise ValueError(
                f"the PSF {request.psf.shape} is too large for tiles of {tiles.tile} px: give a "
                "larger tile (at least twice the PSF) or tile=None"
            )
    return JobPlan(
        request=request,
        number=number,
        parts=parts,
        tiles=tiles,
        preset=preset,
        settings=settings,
        rule=rule,
        perturb_std=task.perturb_std if o.perturb_std is None else o.perturb_std,
        device=device,
        workers=workers,
        threads=thread_share(workers, device),
        psf=psf,
        members=o.ensemble,
    )
