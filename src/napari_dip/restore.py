"""The public numpy API: ``denoise``, ``inpaint``, ``super_resolve`` and ``restore_steps``.

Plain functions over arrays, in the style of ``skimage.restoration``: the input is never
modified, the output has the input's dtype and intensity range.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch

from . import _tiling, engine
from ._arrays import (
    Layout,
    _channel_axis,
    from_unit,
    pad_reflect,
    prepare_image,
    prepare_mask,
    to_dtype,
)
from ._axes import Mode
from ._noise import NoiseParams, noise_terms
from ._stacks import restore_stack, volume_preset

__all__ = [
    "Snapshot",
    "TiledSnapshot",
    "default_steps",
    "denoise",
    "inpaint",
    "restore_steps",
    "super_resolve",
]

Task = Literal["denoise", "inpaint", "super_resolve"]
Stop = Literal["auto", "wmv", "emv", "sharpness", "discrepancy", "budget", "none"]
Noise = Literal["gaussian", "poisson", "poisson-gaussian"]
STOP_RULES = ("auto", "wmv", "emv", "sharpness", "discrepancy", "none")
# With an automatic stop the step budget is only a ceiling: give the rule room to see the peak
# and its patience run out even when the peak comes late.
AUTO_BUDGET_FACTOR = 3


def _is_budget(stop: object) -> bool:
    return stop is None or (isinstance(stop, str) and stop in ("none", "budget"))


def default_steps(preset: str, task: str, stop: str | None = "auto") -> int:
    """The default step budget: the preset's for a fixed budget, ``AUTO_BUDGET_FACTOR`` times
    that as a ceiling when a rule stops the run."""
    steps = engine.get_preset(preset).task(task).steps
    return steps if _is_budget(stop) else AUTO_BUDGET_FACTOR * steps


@dataclass(frozen=True)
class Snapshot:
    """Progress of a restoration, in the caller's axes and intensity range.

    ``estimate`` is the network's current output, ``average`` the smoothed (exponential moving
    average) output; ``best`` the estimate the stop rule chooses (at ``best_step``; the
    ``average`` when there is no rule or it has not chosen yet): what :meth:`result` and
    :func:`denoise` and friends return. All float32. ``score`` is the stop rule's latest score
    (``None`` without one) and ``scores`` its ``(step, score)`` pairs since the previous
    snapshot. ``stop_reason`` is set on the last snapshot only.
    """

    step: int
    total_steps: int
    loss: float
    estimate: np.ndarray
    average: np.ndarray
    elapsed: float
    stop_reason: str | None
    dtype: np.dtype
    best: np.ndarray | None = None
    best_step: int | None = None
    score: float | None = None
    scores: tuple[tuple[int, float], ...] = ()
    # Stacks (``axes`` given): the arrays above are the current piece (slice, frame or volume),
    # ``index`` is where it goes in the result, ``piece``/``pieces`` count them (0-based),
    # ``step``/``total_steps``/``best_step``/``scores`` count the steps of all pieces (so a
    # progress bar and a loss plot run on), ``loss``/``score`` are the current piece's,
    # ``reasons`` hold each finished piece's stop reason, and ``stack`` is the whole result so
    # far (float32), shared by the run's snapshots: finished pieces, and the input where none
    # has been restored yet.
    index: tuple[int | slice, ...] | None = None
    piece: int = 0
    pieces: int = 1
    reasons: tuple[str, ...] = ()
    stack: np.ndarray | None = field(default=None, repr=False, compare=False)

    # Where the stop rule expects this run to end (None: it can't tell); ``eta`` counts to it.
    expected_steps: int | None = None
    # Poisson noise models: the camera gain, offset and read noise the run used (given or
    # estimated from the image, in its intensity units); None for Gaussian noise.
    camera: NoiseParams | None = None

    @property
    def eta(self) -> float:
        """Seconds left at the pace so far: to ``expected_steps`` when the stop rule can tell
        (an automatic stop usually comes long before the ``total_steps`` ceiling), else to
        ``total_steps``."""
        return engine.seconds_left(self.elapsed, self.step, self.total_steps, self.expected_steps)

    def result(self) -> np.ndarray:
        """The chosen (best) estimate cast to the input's dtype: what the one-shot functions
        return. For a stack: the whole stack, with the current piece's best estimate."""
        if self.stack is None:
            return self.piece_result()
        full = self.stack.copy()
        if self.index is not None:
            full[self.index] = self.average if self.best is None else self.best
        return to_dtype(full, self.dtype)

    def piece_result(self) -> np.ndarray:
        """The current piece's chosen estimate in the input's dtype (for an image: all of it)."""
        return to_dtype(self.average if self.best is None else self.best, self.dtype)


@dataclass(frozen=True)
class TiledSnapshot(Snapshot):
    """A :class:`Snapshot` of a big image restored in tiles (see ``tile`` in
    :func:`restore_steps`).

    ``estimate``, ``average`` and ``best`` are one array, the mosaic: finished tiles blended,
    plus the current tile's best estimate so far; the input where no tile has been restored
    yet (see :class:`napari_dip._tiling.TileProgress`). ``step``, ``total_steps``,
    ``best_step`` and ``scores`` count the steps of all tiles (``total_steps`` is a ceiling
    that shrinks as tiles stop early; ``expected_steps``, which ``eta`` counts to, assumes the
    tiles to come take as many steps as the finished ones did on average);
    ``loss``, ``score`` and ``best_step`` belong to the current tile. ``tiles_done`` of
    ``tiles_total`` tiles are finished; the current one is at ``tile_step`` of
    ``tile_total_steps``. When tiles are fitted side by side (``tile_workers``),
    ``tiles_running`` of them are under way, the mosaic shows each one's best so far, and
    "the current tile" is the one that reported last.
    """

    tiles_done: int = 0
    tiles_total: int = 1
    tiles_running: int = 0
    tile_step: int = 0
    tile_total_steps: int = 0


def _check_factor(factor: object) -> int:
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real):
        raise TypeError(f"factor must be an integer >= 2, got {factor!r}")
    if not float(factor).is_integer() or factor < 2:
        raise ValueError(f"factor must be an integer >= 2, got {factor!r}")
    return int(factor)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def restore_steps(
    image: np.ndarray,
    *,
    task: Task = "denoise",
    mask: np.ndarray | None = None,
    factor: int | None = None,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: Mode = "slices",
    preset: str | engine.Preset = "fast",
    steps: int | None = None,
    stop: Stop | engine.StopRule | None = "auto",
    update_every: int = 100,
    seed: int = 0,
    device: str = "auto",
    lr: float | None = None,
    perturb_std: float | None = None,
    tv_weight: float = 0.0,
    precision: str = "auto",
    noise: Noise = "gaussian",
    gain: float | None = None,
    offset: float | None = None,
    read_noise: float | None = None,
    normalize: tuple[float, float] | None = None,
    tile: int | Literal["auto"] | None = "auto",
    tile_overlap: int | None = None,
    tile_workers: int | Literal["auto"] = "auto",
    should_stop: Callable[[], bool] | None = None,
    _depth: int | None = None,
    _fit_state: engine.FitState | None = None,  # continue a saved whole-image run (benchmarks)
) -> Iterator[Snapshot]:
    """Run a DIP restoration, yielding a :class:`Snapshot` every ``update_every`` steps.

    This is the generator behind :func:`denoise`, :func:`inpaint` and :func:`super_resolve`;
    use it to display progress live. All arguments are checked before any fitting starts, so
    a bad argument raises on the first ``next()``. The last snapshot
    has ``stop_reason`` set. Stop early by closing the generator (the snapshots you already
    have stay valid) or by making ``should_stop()`` return True, which is checked every step
    and still yields a final snapshot.

    Parameters
    ----------
    image : ndarray
        ``(H, W)``, or ``(H, W, C)``/``(C, H, W)`` with ``channel_axis``. Integer or float.
    task : {"denoise", "inpaint", "super_resolve"}
    mask : ndarray, optional
        Inpainting only: nonzero where pixels are missing. Shape ``(H, W)`` or the image's shape.
    factor : int, optional
        Super-resolution only: integer upscaling factor >= 2.
    channel_axis : int, optional
        Axis of colour/channels, e.g. ``-1`` for RGB.
    axes : str, optional
        One letter per axis of ``image`` from ``T`` (time), ``Z`` (depth), ``C`` (channels,
        RGB included), ``Y``, ``X``, e.g. ``"ZYX"``, ``"TZCYX"``, ``"YXC"``: for stacks,
        time-lapses and their combinations (instead of ``channel_axis``). ``mask`` may then
        have the image's shape, its shape without ``C``, or ``(Y, X)`` (the same holes
        everywhere).
    mode : {"slices", "volume"}
        With ``axes``: ``"slices"`` restores every ``YX`` plane (with its channels) on its own,
        one after the other, each with a fresh network from ``seed``, exactly as if it were
        passed alone (tiled too when big); ``"volume"`` restores every ``ZYX`` volume with a 3D
        network (Conv3d; super-resolution scales Y and X only; never tiled). Snapshots then
        describe the current piece and count the steps of all pieces; ``should_stop`` ends the
        run keeping the finished pieces and the current one's best estimate (the rest keep
        the input).
    preset : str or napari_dip.engine.Preset
        Network and schedule by name (``napari-dip presets`` lists them; ``paper`` is the
        published configuration, slow on a CPU), or a :class:`~napari_dip.engine.Preset`, e.g.
        ``dataclasses.replace(get_preset("fast"), betas=(0.8, 0.9))``.
    steps : int, optional
        Most optimisation steps; default from the preset and task (three times that when
        ``stop`` is a rule, see :func:`default_steps`).
    stop : {"auto", "wmv", "emv", "sharpness", "discrepancy", "none"} or StopRule
        When to stop without ground truth (see :mod:`napari_dip.engine.stopping`): ``"auto"``
        (default: ``"wmv"`` and ``"discrepancy"``, whichever stops first), ``"wmv"``
        (windowed moving variance of the outputs, ES-WMV), ``"emv"`` (its exponential
        variant), ``"sharpness"`` (blurriness/sharpness ratio settles), ``"discrepancy"``
        (denoising only: the data term falls to its value at the truth, i.e. the noise
        variance estimated from the input, or the expected Poisson deviance), or
        ``"none"``/``"budget"``/``None``: run all ``steps``. With a rule the result is the
        estimate the rule chose (``Snapshot.best``), not the last one.
    update_every : int
        Steps between snapshots.
    seed : int
        Same seed and device give the same result.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    lr, perturb_std : float, optional
        Adam learning rate and per-step input noise; defaults from the preset and task.
    tv_weight : float
        Weight of a total-variation term added to the data term (0 = plain DIP).
    precision : {"auto", "float32", "bfloat16", "float16"}
        Arithmetic of the network's forward pass. ``"auto"``: bfloat16 where the device computes
        it natively (recent CPUs and GPUs), else float16 on CUDA, else float32.
    noise : {"gaussian", "poisson", "poisson-gaussian"}
        The data term: ``"gaussian"`` (default, squared error), ``"poisson"`` (photon counts:
        Poisson likelihood) or ``"poisson-gaussian"`` (photon counts plus camera read noise,
        shifted-Poisson approximation). See :mod:`napari_dip.engine.noise`.
    gain, offset, read_noise : float, optional
        The camera model of the photon-count noises, in the image's units: ``value = offset +
        gain · photons (+ read noise of std read_noise)``. ``None`` (default) estimates them from
        the image (a mean–variance fit over patches, see :func:`napari_dip._noise.
        estimate_noise`). ``read_noise`` needs ``noise="poisson-gaussian"``; none of them apply
        to Gaussian noise. Poisson noise refuses data below a given ``offset``.
    normalize : (float, float), optional
        Percentiles mapped to the network's 0 and 1, e.g. ``(0.1, 99.9)``, so a few hot pixels
        don't squeeze the rest; the result then stays within them. ``None`` (default): the
        min and max of the known pixels, so nothing in the image is out of the network's reach.
    tile : int, "auto" or None
        Restore a big image in overlapping tiles of this side (input pixels), one fit per tile,
        blended without seams (:mod:`napari_dip._tiling`); the snapshots are then
        :class:`TiledSnapshot` mosaics that also count tiles. ``"auto"``
        (default) tiles images over 1024² pixels (512² for heavy presets such as ``paper``;
        divided by the super-resolution factor) in tiles of a side from the preset's cost and
        the device (512 for ``fast`` on a CPU, 256 for ``paper``, twice that on CUDA, divided
        by the factor; see :func:`napari_dip._tiling.default_tile`). Denoising with ``fast``
        on a CPU tiles sooner, for speed: images over about 204² go in 144-pixel tiles,
        which each stop after a few hundred steps (256² 2.5× and 512² 7× sooner than
        whole, as good or better; tiles run side by side, see ``tile_workers``). ``None``:
        never tile.
        An image may also be a lazy dask/zarr array: it is then read one tile at a time.
    tile_overlap : int, optional
        Overlap of neighbouring tiles in input pixels (default: 1/8 of the tile side).
    tile_workers : int or "auto"
        How many tiles are fitted at once, each on its own thread. ``"auto"`` (default): on
        a CPU one per torch thread (``torch.get_num_threads()``, at most 8), each tile's
        fit then using one thread, which keeps the cores busier than one tile split over
        them (a 128² tile: 1.6× the steps per second on 2 cores); elsewhere 1. The result is
        deterministic for a given count (tiles are blended in plan order), but a tile fitted
        on one thread differs in the last bits from one fitted on several. Each tile's thread
        takes its share of torch's threads; torch's default for new threads is that share
        while the tiles run and is put back afterwards; the calling thread's count is
        untouched.
    should_stop : callable, optional
        Polled every step; return True to stop after the current step.
    """
    if axes is not None:
        options = {k: v for k, v in locals().items() if k not in ("image", "axes", "mode")}
        if channel_axis is not None:
            raise ValueError("give either axes or channel_axis, not both")
        if _fit_state is not None:
            raise ValueError("_fit_state continues a single image's run; it takes no axes")
        return restore_stack(image, axes, mode, options)
    if mode != "slices":
        raise ValueError("mode is used with axes (e.g. axes='ZYX', mode='volume')")
    if task not in ("denoise", "inpaint", "super_resolve"):
        raise ValueError(f"unknown task {task!r}; choose 'denoise', 'inpaint' or 'super_resolve'")
    if task != "inpaint" and mask is not None:
        raise ValueError("mask is only used for task='inpaint'")
    if task != "super_resolve" and factor is not None:
        raise ValueError("factor is only used for task='super_resolve'")
    chosen = engine.get_preset(preset)
    settings = chosen.task(task)
    if stop == "discrepancy" and (task != "denoise" or tv_weight):
        raise ValueError(
            "stop='discrepancy' compares the data term with its value at the truth, which is "
            "known for denoising only: it needs task='denoise' and no tv_weight; use 'auto' or "
            "'wmv'"
        )
    rule = engine.make_stop_rule(stop)
    if steps is None:
        budget_only = _is_budget(stop) or isinstance(rule, engine.FixedBudget)
        steps = settings.steps if budget_only else AUTO_BUDGET_FACTOR * settings.steps
    else:
        steps = _check_positive_int("steps", steps)
    update_every = _check_positive_int("update_every", update_every)
    if not (isinstance(tile_workers, str) and tile_workers == "auto"):
        _check_positive_int("tile_workers", tile_workers)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not (isinstance(tv_weight, numbers.Real) and tv_weight >= 0):
        raise ValueError(f"tv_weight must be a number >= 0, got {tv_weight!r}")
    fit_settings = engine.FitSettings(
        steps=steps,
        lr=chosen.lr if lr is None else lr,
        betas=chosen.betas,
        ema=chosen.ema,
        snapshot_every=update_every,
        precision=precision,
    )
    perturb = settings.perturb_std if perturb_std is None else float(perturb_std)
    if not perturb >= 0:
        raise ValueError(f"perturb_std must be >= 0, got {perturb_std!r}")

    lazy = _tiling.is_lazy(image)  # dask, zarr: read tile by tile, never whole
    image = image if isinstance(image, np.ndarray) or lazy else np.asarray(image)
    known = None
    scale = 1
    if task == "inpaint":
        if mask is None:
            raise ValueError("inpainting needs a mask (nonzero = missing pixels)")
        known = prepare_mask(mask, image.shape, channel_axis)
    elif task == "super_resolve":
        if factor is None:
            raise ValueError("super-resolution needs a factor (an integer >= 2)")
        scale = _check_factor(factor)
    plan = _tile_plan(
        image.shape, channel_axis, scale, tile, tile_overlap, chosen, device, task == "denoise"
    )
    if plan is not None and _fit_state is not None:
        raise ValueError("_fit_state continues a whole-image run; pass tile=None")
    if plan is not None:
        dev = engine.resolve_device(device)
        engine.autocast_dtype(dev, precision)
        fit = functools.partial(
            _run,
            scale=scale,
            preset=tile_preset(chosen, plan, task),
            settings=fit_settings,
            perturb_std=perturb,
            tv_weight=tv_weight,
            seed=seed,
            device=dev,
        )
        noise_args = (noise, gain, offset, read_noise)
        workers = _tile_workers(tile_workers, dev, len(plan))
        share = thread_share(workers, dev)
        tiled = _run_tiled(
            image,
            plan,
            fit,
            rule,
            channel_axis,
            known,
            normalize,
            noise_args,
            should_stop,
            workers,
            share,
        )
        if share is None:
            return tiled
        return _restoring_threads(tiled, torch.get_num_threads())  # the count shared out
    image = np.asarray(image) if lazy else image  # small enough to restore whole: one read
    unit, layout = prepare_image(image, channel_axis, known, normalize=normalize)
    chw = image[None] if layout.channel_axis is None else np.moveaxis(image, layout.channel_axis, 0)
    terms, camera = noise_terms(
        noise,
        chw,
        layout.lo,
        layout.hi,
        None if known is None else np.broadcast_to(known, chw.shape),
        gain,
        offset,
        read_noise,
    )
    noise_model = engine.make_noise_model(noise, **terms)
    if _depth:  # a volume from restore_stack, flattened to (C·D, H, W) so far
        unit = unit.reshape(-1, _depth, *unit.shape[1:])
        known = None if known is None else known.reshape(unit.shape)
    dev = engine.resolve_device(device)
    engine.autocast_dtype(dev, precision)  # a precision the device can't run fails here, early
    return _run(
        unit,
        layout,
        known,
        scale,
        chosen,
        fit_settings,
        perturb,
        tv_weight,
        seed,
        dev,
        should_stop,
        rule,
        noise_model,
        camera,
        _fit_state,
    )


def padding_rule(network_multiple: int, scale: int = 1) -> tuple[int, int]:
    """How the observation is padded for a network: to a multiple of the first value, at least
    the second. The network's output side (``scale`` × observed) must be a multiple of
    ``network_multiple``, and its deepest scale must keep at least 2 pixels for the reflection
    padding."""
    multiple = network_multiple // math.gcd(network_multiple, scale)
    return multiple, -(-2 * network_multiple // scale)


def _run(
    unit: np.ndarray,
    layout: Layout,
    known: np.ndarray | None,
    scale: int,
    preset: engine.Preset,
    settings: engine.FitSettings,
    perturb_std: float,
    tv_weight: float,
    seed: int,
    device: torch.device,
    should_stop: Callable[[], bool] | None,
    rule: engine.StopRule,
    noise: engine.NoiseModel | None = None,
    camera: NoiseParams | None = None,
    state: engine.FitState | None = None,
) -> Iterator[Snapshot]:
    # Pad the observation so the network's output side (scale × observed) is a multiple of
    # what the network needs; the padding is cropped away from every snapshot.
    # The deepest scale must keep at least 2 pixels for its reflection padding.
    # A volume (C, D, H, W) gets the 3D version of the preset's network (see volume_preset).
    if unit.ndim == 4:
        preset = volume_preset(preset, unit.shape[1])
    net = preset.network
    multiple, minimum = padding_rule(net.multiple, scale)
    depth = (net.multiple_z, 2 * net.multiple_z) if unit.ndim == 4 else (1, 0)
    y, offsets = pad_reflect(unit, multiple, minimum, *depth)
    scales = (1,) * (unit.ndim - 3) + (scale, scale)  # super-resolution: Y and X only
    region = tuple(
        slice(o * f, (o + n) * f) for o, n, f in zip(offsets, unit.shape[1:], scales, strict=True)
    )
    operator: engine.Operator = engine.Identity()
    if known is not None:
        known_padded, _ = pad_reflect(known.astype(np.float32), multiple, minimum, *depth)
        operator = engine.Mask(torch.from_numpy(known_padded)[None])
    if scale > 1:
        operator = engine.Downsample(scale)
    problem = engine.Problem(
        torch.from_numpy(y)[None],
        operator,
        float(tv_weight),
        region,
        engine.Gaussian() if noise is None else noise,
    )
    out_shape = tuple(n * f for n, f in zip(y.shape[1:], scales, strict=True))
    prior = engine.build_prior(
        preset, out_shape, y.shape[0], perturb_std=perturb_std, seed=int(seed), device=device
    )
    generator = torch.Generator(device=device).manual_seed(int(seed) + 1)
    for snap in engine.fit(
        problem.to(device),
        prior,
        settings,
        generator=generator,
        should_stop=should_stop,
        stop_rule=rule,
        state=state,
    ):
        yield Snapshot(
            step=snap.step,
            total_steps=snap.total_steps,
            loss=snap.loss,
            estimate=from_unit(snap.estimate.numpy(), layout),
            average=from_unit(snap.average.numpy(), layout),
            elapsed=snap.elapsed,
            stop_reason=snap.stop_reason,
            dtype=layout.dtype,
            best=None if snap.best is None else from_unit(snap.best.numpy(), layout),
            best_step=snap.best_step,
            score=snap.score,
            scores=snap.scores,
            expected_steps=snap.expected_steps,
            camera=camera,
        )


def _tile_plan(
    shape: tuple[int, ...],
    channel_axis: int | None,
    scale: int,
    tile: object,
    overlap: int | None,
    preset: engine.Preset,
    device: str,
    denoise: bool = False,
) -> _tiling.TilePlan | None:
    """The tiles for an image of ``shape``, or None to restore it whole (see ``tile``);
    ``denoise``: the task is denoising (smaller automatic tiles on a CPU)."""
    if tile is None:
        return None
    axis = _channel_axis(len(shape), channel_axis)  # also rejects unsupported dimensions
    h, w = (n for i, n in enumerate(shape) if i != axis)
    net = preset.network
    width = max(getattr(net, "down", (0,))[0], getattr(net, "channels", (0,))[-1])
    kind = engine.resolve_device(device).type
    side, default_overlap = _tiling.default_tile(width, kind, scale, denoise)
    if isinstance(tile, str):
        if tile != "auto":
            raise ValueError(f"tile must be 'auto', None or an integer >= 16, got {tile!r}")
        if h * w <= _tiling.untiled_limit(width, scale, kind, denoise):
            return None
    else:
        side = tile  # type: ignore[assignment]  # plan_tiles checks it
        default_overlap = tile // 8 if isinstance(tile, numbers.Integral) else 0
    plan = _tiling.plan_tiles((h, w), side, default_overlap if overlap is None else overlap, scale)
    return plan if len(plan) > 1 else None


# Denoising tiles: a light network's coarsest scale keeps at least this side, and its
# convolutions pad with this (``tile_preset``).
COARSEST_SIDE = 16
TILE_PADDING = "zeros"


def tile_preset(preset: engine.Preset, plan: _tiling.TilePlan, task: str) -> engine.Preset:
    """The preset a tile of ``plan`` is fitted with: for denoising with a light 2D skip
    network, without the coarsest scales that would be under ``COARSEST_SIDE`` pixels, and with
    ``TILE_PADDING`` in its convolutions.

    Why: a small tile's coarsest scales are a few pixels wide, mostly padding, and cost a
    step's fixed overhead for little; zero padding is folded into the convolution, where
    reflection pads a copy of every activation forward and back. In the default 144-px tiles
    ``fast`` keeps 3 of its 5 scales (the coarsest 18 px) and pads with zeros: a tile step
    23 % cheaper (144², one thread), and fewer steps to the automatic stop. 512² *camera*,
    σ = 25: 28.91 dB in 104 s against 28.95 dB in 136 s with 4 scales and reflection;
    *astronaut* 29.15 dB in 129 s against 29.20 dB in 190 s; 256² *camera* 28.32 dB in 38 s
    against 57 s (benchmarks/results/tile_padding.md). The loss is at the image's border,
    where the network's zero padding meets the image's edge: 0.18–0.25 dB within 8 px of it.
    Inpainting and super-resolution keep the whole network (holes need its reach; not
    measured), as do heavy presets (``paper``) and whole images.
    """
    net = preset.network
    side = min(plan.tile, *plan.shape) * plan.factor
    if (
        task != "denoise"
        or not isinstance(net, engine.SkipConfig)
        or net.dims != 2
        or net.down[0] >= _tiling.HEAVY_CHANNELS
    ):
        return preset
    keep = max(1, min(net.scales, int(math.log2(side / COARSEST_SIDE))))
    network = replace(net.finest(keep), padding=TILE_PADDING)
    return preset if network == net else replace(preset, network=network)


def _tile_workers(value: object, device: torch.device, tiles: int) -> int:
    """How many tiles to fit at once (see ``tile_workers`` in :func:`restore_steps`)."""
    if isinstance(value, str) and value == "auto":
        if device.type != "cpu":  # one tile already keeps a GPU busy (not measured otherwise)
            return 1
        return max(1, min(torch.get_num_threads(), _tiling.TILE_WORKERS, tiles))
    return _check_positive_int("tile_workers", value)


def thread_share(workers: int, device: torch.device) -> int | None:
    """torch threads for each of ``workers`` fits run side by side on ``device`` (the
    caller's count shared out), or None to leave the counts alone (one fit, or not a CPU)."""
    if workers <= 1 or device.type != "cpu":
        return None
    return max(1, torch.get_num_threads() // workers)


def use_threads(count: int) -> None:
    """Give the calling thread ``count`` torch threads: call it first in a worker thread.

    torch keeps a count per thread, read once (from its default for new threads, which
    ``set_num_threads`` also sets) when the thread first needs it; the read is made now.
    """
    torch.set_num_threads(count)
    torch.get_num_threads()


def restore_default_threads(count: int) -> None:
    """Make ``count`` torch's thread count for threads started from now on (undoing
    :func:`use_threads`' side effect on that default) without touching the calling thread's
    own count: the setting is made on a helper thread."""
    helper = threading.Thread(target=torch.set_num_threads, args=(count,))
    helper.start()
    helper.join()


def _on_threads(run: Iterator[Snapshot], count: int) -> Iterator[Snapshot]:
    """``run`` on ``count`` torch threads in the thread that consumes it."""
    use_threads(count)
    yield from run


def _restoring_threads(steps: Iterator[TiledSnapshot], count: int) -> Iterator[TiledSnapshot]:
    """``steps``, then torch's default thread count back to ``count`` however it ends."""
    try:
        yield from steps
    finally:
        restore_default_threads(count)


def _run_tiled(
    image: object,
    plan: _tiling.TilePlan,
    fit: Callable[..., Iterator[Snapshot]],
    rule: engine.StopRule,
    channel_axis: int | None,
    known: np.ndarray | None,
    normalize: tuple[float, float] | None,
    noise_args: tuple,
    should_stop: Callable[[], bool] | None,
    workers: int = 1,
    threads: int | None = None,
) -> Iterator[TiledSnapshot]:
    """Restore ``image`` tile by tile with ``fit`` (``_run`` with the run's settings bound),
    ``workers`` tiles at once, each fit on ``threads`` torch threads (None: as they are);
    each tile gets its own copy of the stop ``rule``.

    One intensity mapping and one noise model for all tiles: for a numpy image both come from
    the whole image, now (so bad input raises at once); for a lazy image the range is found
    band by band in the generator and the noise model is estimated on the central tile.
    """
    unit_layout = Layout(np.dtype(np.float32), 0.0, 1.0, 0, 3)  # tiles stay (C, h, w) in [0, 1]
    models: list[engine.NoiseModel] = []
    cameras: list[NoiseParams | None] = []

    def noise_model(value_range: tuple[float, float]) -> engine.NoiseModel:
        if not models:
            if noise_args[0] == "gaussian":  # needs no data: don't read any
                values, part = np.zeros((2, 2) if channel_axis is None else (2, 2, 1)), None
            elif isinstance(image, np.ndarray):
                values, part = image, known
            else:
                rows, cols = list(plan.tiles())[len(plan) // 2]
                index = _tiling._index(len(image.shape), channel_axis, rows, cols)  # type: ignore[attr-defined]
                values = np.asarray(image[index])  # type: ignore[index]
                part = None if known is None else known[:, rows, cols]
            axis = None if channel_axis is None else channel_axis % values.ndim
            chw = values[None] if axis is None else np.moveaxis(values, axis, 0)
            terms, camera = noise_terms(
                noise_args[0],
                chw,
                *value_range,
                None if part is None else np.broadcast_to(part, chw.shape),
                *noise_args[1:],
            )
            models.append(engine.make_noise_model(noise_args[0], **terms))
            cameras.append(camera)
        return models[0]

    def fit_tile(
        unit: np.ndarray,
        part: np.ndarray | None,
        value_range: tuple[float, float],
        halt: Callable[[], bool],
    ) -> Iterator[Snapshot]:
        model = noise_model(value_range)  # here, on the calling thread: built once
        run = fit(
            unit,
            unit_layout,
            part,
            noise=model,
            camera=cameras[0],
            should_stop=halt,
            rule=copy.deepcopy(rule),  # tiles may run at once: each its own rule state
        )
        return run if threads is None else _on_threads(run, threads)

    _tiling.check_known(plan, known)
    value_range = None
    if isinstance(image, np.ndarray):
        value_range = _tiling.global_range(image, channel_axis, known, normalize)
        noise_model(value_range)
    return _tiling.tiled_steps(
        image,
        plan,
        fit_tile,
        channel_axis=channel_axis,
        known=known,
        normalize=normalize,
        value_range=value_range,
        should_stop=should_stop,
        snapshot_type=TiledSnapshot,
        workers=workers,
    )


def _finish(
    snapshots: Iterator[Snapshot], callback: Callable[[Snapshot], object] | None
) -> np.ndarray:
    last = None
    for last in snapshots:
        if callback is not None and callback(last) is True:
            snapshots.close()
            break
    assert last is not None
    return last.result()


_COMMON_DOC = """
    channel_axis : int, optional
        Axis of colour/channels (e.g. ``-1`` for RGB); ``None`` for a greyscale 2D image.
    axes : str, optional
        For stacks, time-lapses and volumes, instead of ``channel_axis``: one letter per axis
        from ``T``, ``Z``, ``C``, ``Y``, ``X`` (e.g. ``"ZYX"``, ``"TZCYX"``); the result has
        the input's shape. See :func:`restore_steps`.
    mode : {"slices", "volume"}
        With ``axes``: every ``YX`` slice as a 2D image (default), or every ``ZYX`` volume with
        a 3D network.
    preset : str or napari_dip.engine.Preset
        ``fast`` (default) is light enough for a CPU; ``paper`` is the published network;
        ``napari-dip presets`` lists the others. A :class:`~napari_dip.engine.Preset` is used
        as given.
    steps : int, optional
        Most optimisation steps; the default depends on the preset, task and ``stop``.
    stop : {"auto", "wmv", "emv", "sharpness", "discrepancy", "none"}
        Automatic early stopping (default ``"auto"``: ES-WMV and the discrepancy rule, whichever
        stops first); the result is the estimate the rule chose. ``"none"`` runs all
        ``steps`` and returns the final smoothed output.
    seed : int
        Same seed and device give the same result.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` or ``"mps"``.
    callback : callable, optional
        Called with each :class:`Snapshot` (every ``update_every`` steps); return ``True`` to
        stop early and get the result so far.
    **options
        Passed to :func:`restore_steps`: ``update_every``, ``lr``, ``perturb_std``,
        ``tv_weight``, ``noise`` (``"gaussian"``, ``"poisson"``, ``"poisson-gaussian"``),
        ``gain``, ``offset``, ``read_noise`` and ``normalize``.

    Returns
    -------
    ndarray
        Same dtype and intensity range as ``image``."""


def denoise(
    image: np.ndarray,
    *,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: Mode = "slices",
    preset: str | engine.Preset = "fast",
    steps: int | None = None,
    stop: Stop | None = "auto",
    seed: int = 0,
    device: str = "auto",
    callback: Callable[[Snapshot], object] | None = None,
    **options: object,
) -> np.ndarray:
    """Remove noise from ``image`` with Deep Image Prior.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` greyscale, or multichannel with ``channel_axis``.
    """
    snaps = restore_steps(
        image,
        task="denoise",
        channel_axis=channel_axis,
        axes=axes,
        mode=mode,
        preset=preset,
        steps=steps,
        stop=stop,
        seed=seed,
        device=device,
        **options,  # type: ignore[arg-type]
    )
    return _finish(snaps, callback)


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: Mode = "slices",
    preset: str | engine.Preset = "fast",
    steps: int | None = None,
    stop: Stop | None = "auto",
    seed: int = 0,
    device: str = "auto",
    callback: Callable[[Snapshot], object] | None = None,
    **options: object,
) -> np.ndarray:
    """Fill the missing pixels of ``image`` (where ``mask`` is nonzero) with Deep Image Prior.

    Values of ``image`` under the mask are ignored (they may be NaN). The whole image is
    returned as the network reproduces it, so known pixels are also lightly denoised.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` greyscale, or multichannel with ``channel_axis``.
    mask : ndarray
        Nonzero = missing. Shape ``(H, W)``, or the image's shape for per-channel holes.
    """
    snaps = restore_steps(
        image,
        task="inpaint",
        mask=mask,
        channel_axis=channel_axis,
        axes=axes,
        mode=mode,
        preset=preset,
        steps=steps,
        stop=stop,
        seed=seed,
        device=device,
        **options,  # type: ignore[arg-type]
    )
    return _finish(snaps, callback)


def super_resolve(
    image: np.ndarray,
    factor: int,
    *,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: Mode = "slices",
    preset: str | engine.Preset = "fast",
    steps: int | None = None,
    stop: Stop | None = "auto",
    seed: int = 0,
    device: str = "auto",
    callback: Callable[[Snapshot], object] | None = None,
    **options: object,
) -> np.ndarray:
    """Upscale ``image`` by an integer ``factor`` with Deep Image Prior.

    The result's spatial shape is ``factor`` times the input's; it is fitted so that its
    anti-aliased bicubic downsampling reproduces ``image``, pixel centres aligned.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` greyscale, or multichannel with ``channel_axis``.
    factor : int
        Upscaling factor, an integer >= 2.
    """
    snaps = restore_steps(
        image,
        task="super_resolve",
        factor=factor,
        channel_axis=channel_axis,
        axes=axes,
        mode=mode,
        preset=preset,
        steps=steps,
        stop=stop,
        seed=seed,
        device=device,
        **options,  # type: ignore[arg-type]
    )
    return _finish(snaps, callback)


for _f in (denoise, inpaint, super_resolve):
    _f.__doc__ = (_f.__doc__ or "") + _COMMON_DOC
del _f
