"""Stacks, time-lapses and volumes: an image with ``axes`` restored piece by piece (each slice
or frame as a 2D image, or each Z-stack as one 3D volume) through ``restore_steps``'s ordinary
path, with every snapshot carrying the whole stack so far."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from . import _tiling, engine
from ._arrays import ConstantImageError
from ._axes import Plan, make_plan

if TYPE_CHECKING:
    from .restore import Snapshot

MIN_Z_PER_LEVEL = 4  # a 3D scale halves Z only while at least this many slices remain


def z_levels(depth: int, scales: int) -> int:
    """How many of a 3D network's finest scales also halve Z for a volume ``depth`` deep.

    Only while ``MIN_Z_PER_LEVEL`` slices remain (10 slices: one level, 20: two): Z-stacks
    are short and coarse in Z, and halving them as often as Y and X would merge slices that
    lie far apart and leave levels a slice or two deep, all reflection padding for a 3×3×3
    kernel. The coarser scales keep Z and halve Y and X only.
    """
    levels = 0
    while levels < scales and depth / 2 ** (levels + 1) >= MIN_Z_PER_LEVEL:
        levels += 1
    return levels


def volume_preset(preset: engine.Preset, depth: int) -> engine.Preset:
    """``preset`` with its network made 3D (Conv3d) for a volume ``depth`` slices deep."""
    net = preset.network
    levels = z_levels(depth, net.scales if isinstance(net, engine.SkipConfig) else net.stages)
    return replace(preset, network=replace(net, dims=3, z_scales=levels))


def restore_stack(image: object, axes: object, mode: object, options: dict) -> Iterator[Snapshot]:
    """``restore_steps`` for an image with ``axes``: one run per slice (``mode="slices"``) or
    per volume (``"volume"``), each through the ordinary path with every other option
    unchanged. Arguments are checked now, on the first piece (the only one read so far)."""
    lazy = _tiling.is_lazy(image)  # dask, zarr: read one piece at a time, never whole
    if not (isinstance(image, np.ndarray) or lazy):
        image = np.asarray(image)
    plan = make_plan(image.shape, axes, mode)  # type: ignore[attr-defined]
    mask = options.pop("mask")
    options.pop("_depth")
    if mask is not None:
        mask = mask if isinstance(mask, np.ndarray) else np.asarray(mask)
        _mask_piece(mask, next(plan.indices()), plan)  # checks the shape
    if plan.mode == "volume":
        stop = options["stop"]
        if stop == "sharpness" or isinstance(stop, engine.SharpnessRatio):
            raise ValueError("the sharpness stop rule is 2D only; use 'wmv' or 'emv' for volumes")
        if engine.get_preset(options["preset"]).input_kind != "noise":
            raise ValueError("volumes need a preset with a noise input (not a meshgrid)")
        options["tile"] = None  # volumes are restored whole
    # The first piece that is not constant is started now, so bad options fail at once; the
    # constant pieces before it are kept as they are, like any later one.
    for k, index in enumerate(plan.indices()):
        try:
            first = _piece_steps(image, index, plan, mask, options)
        except ConstantImageError:
            continue
        return _stack_steps(image, plan, mask, options, first, k)
    noun = "volume" if plan.mode == "volume" else "slice"
    raise ConstantImageError(f"every {noun} of the image is constant: nothing to restore")


def _mask_piece(mask: np.ndarray, index: tuple, plan: Plan) -> np.ndarray:
    """The part of a stack's ``mask`` for the piece at ``index``: the mask has the image's
    shape, its shape without ``C``, or is one ``(Y, X)`` mask for every piece."""
    shape, axes = plan.shape, plan.axes
    no_c = tuple(n for a, n in zip(axes, shape, strict=True) if a != "C")
    yx = tuple(n for a, n in zip(axes, shape, strict=True) if a in "YX")
    if mask.shape == shape:
        return np.asarray(mask[index])
    if "C" in axes and mask.shape == no_c:
        return np.asarray(mask[tuple(i for a, i in zip(axes, index, strict=True) if a != "C")])
    if mask.shape == yx:
        return mask
    wanted = " or ".join(str(s) for s in dict.fromkeys((shape, no_c, yx)))
    raise ValueError(f"mask shape {mask.shape} does not match the image: expected {wanted}")


def _volume_mask(mask: np.ndarray, plan: Plan, shape: tuple[int, ...]) -> np.ndarray:
    """A piece's mask (core letters, maybe without C or Z) as missing-pixel bools of
    ``shape`` = ``(C, D, H, W)``."""
    core = plan.core_letters
    if mask.ndim == len(core):
        letters = core
    elif "C" in core and mask.ndim == len(core) - 1:
        letters = core.replace("C", "")
    else:
        letters = "".join(a for a in core if a in "YX")
    order = "".join(a for a in "CZYX" if a in letters)
    missing = np.transpose(mask != 0, [letters.index(a) for a in order])
    for i, a in enumerate("CZ"):
        if a not in order:
            missing = np.expand_dims(missing, i)
    return np.broadcast_to(missing, shape)


def _piece_steps(
    image: object, index: tuple, plan: Plan, mask: np.ndarray | None, options: dict
) -> Iterator[Snapshot]:
    """``restore_steps`` on one piece of a stack (read now, and only it)."""
    from .restore import restore_steps  # restore imports this module

    piece = np.asarray(image[index])  # type: ignore[index]
    kwargs = dict(options)
    core = plan.core_letters
    if plan.mode == "slices":
        kwargs["channel_axis"] = core.index("C") if "C" in core else None
        if mask is not None:
            kwargs["mask"] = _mask_piece(mask, index, plan)
        return restore_steps(piece, **kwargs)
    cdhw = plan.to_engine(piece)  # a volume goes in as (C·D, H, W) "channels" (one range)
    flat = (-1, *cdhw.shape[2:])
    if mask is not None:
        kwargs["mask"] = _volume_mask(_mask_piece(mask, index, plan), plan, cdhw.shape).reshape(
            flat
        )
    return restore_steps(
        cdhw.reshape(flat),
        channel_axis=0,
        _depth=cdhw.shape[1],
        **{k: v for k, v in kwargs.items() if k != "channel_axis"},
    )


def _placeholder(piece: np.ndarray, plan: Plan, factor: int) -> np.ndarray:
    """What a piece shows until it is restored: the input (pixel-repeated when upscaling)."""
    values = np.nan_to_num(piece.astype(np.float32))
    for axis, letter in enumerate(plan.core_letters):
        if letter in "YX" and factor > 1:
            values = np.repeat(values, factor, axis=axis)
    return values


def _as_piece(snap: object, plan: Plan, offset: int, **fields: object) -> Snapshot:
    """A piece's snapshot (plain or tiled) as a stack :class:`Snapshot`; its steps (``best_step``
    and those of ``scores``) move on by ``offset``, the steps of the pieces before it."""

    from .restore import Snapshot

    def axes(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else plan.from_engine(a)

    get = snap.__getattribute__
    estimate, average, best = (get(n) for n in ("estimate", "average", "best"))
    if plan.mode == "volume":
        estimate, average, best = axes(estimate), axes(average), axes(best)
    return Snapshot(
        loss=get("loss"),
        estimate=estimate,
        average=average,
        dtype=get("dtype"),
        best=best,
        best_step=None if get("best_step") is None else offset + get("best_step"),
        score=get("score"),
        scores=tuple((offset + step, value) for step, value in get("scores")),
        camera=getattr(snap, "camera", None),
        pieces=plan.count,
        **fields,  # type: ignore[arg-type]
    )


def _stack_steps(
    image: object,
    plan: Plan,
    mask: np.ndarray | None,
    options: dict,
    first: Iterator[Snapshot],
    first_k: int = 0,
) -> Iterator[Snapshot]:
    """Run the pieces one after the other (piece ``first_k`` is ``first``, already started);
    every snapshot carries the whole stack so far."""
    from .restore import Snapshot

    factor = int(options.get("factor") or 1)
    out = np.empty(plan.out_shape(factor), np.float32)
    for index in plan.indices():
        out[index] = _placeholder(np.asarray(image[index]), plan, factor)  # type: ignore[index]
    noun = "volumes" if plan.mode == "volume" else "slices"
    start = time.perf_counter()
    done_steps = 0
    reasons: list[str] = []
    last: Snapshot | None = None
    for k, index in enumerate(plan.indices()):
        try:
            snaps = first if k == first_k else _piece_steps(image, index, plan, mask, options)
        except ValueError as err:  # e.g. an empty (constant) frame: keep it as it is
            reasons.append(f"{noun[:-1]} {k}: not restored ({err})")
            continue
        piece_steps = 0
        for snap in snaps:
            finished = snap.stop_reason is not None
            requested = snap.stop_reason == "stopped on request"
            piece_steps = snap.step
            if finished:
                chosen = snap.average if snap.best is None else snap.best
                out[index] = plan.from_engine(chosen) if plan.mode == "volume" else chosen
                reasons.append(snap.stop_reason)
            final = requested or (finished and k == plan.count - 1)
            reason = None
            if final:
                reason = (
                    snap.stop_reason
                    if requested
                    else f"{len(reasons)} {noun} done; the last: {snap.stop_reason}"
                )
            own = snap.step if finished else snap.total_steps
            last = _as_piece(
                snap,
                plan,
                done_steps,
                step=done_steps + snap.step,
                total_steps=done_steps + own + snap.total_steps * (plan.count - k - 1),
                elapsed=time.perf_counter() - start,
                stop_reason=reason,
                index=index,
                piece=k,
                reasons=tuple(reasons),
                stack=out,
            )
            yield last
            if requested:
                return
        done_steps += piece_steps
    if last is None or last.stop_reason is None:  # the last piece could not be restored
        dtype = last.dtype if last is not None else np.dtype(getattr(image, "dtype", "f4"))
        yield Snapshot(
            step=done_steps,
            total_steps=done_steps,
            loss=math.nan,
            estimate=out[index],
            average=out[index],
            elapsed=time.perf_counter() - start,
            stop_reason=f"{len(reasons)} {noun} done; the last: {reasons[-1]}",
            dtype=dtype,
            index=index,
            piece=plan.count - 1,
            pieces=plan.count,
            reasons=tuple(reasons),
            stack=out,
        )
