"""Fitting one piece: its inputs in, the engine's problem and prior built, snapshots out.

A :class:`PieceTask` holds everything a fit needs as plain, picklable values (numpy arrays and
frozen settings), so any executor — a thread here, a Dask worker elsewhere — can run it with
:func:`fit_piece`. Snapshots come back as :class:`PieceSnapshot`: numpy copies in the engine's
normalised range, owned by whoever receives them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from .. import engine
from .._arrays import pad_reflect
from .fusion import Fusion, fuse_filled, fuse_piece
from .plan import Piece
from .threads import use_threads

__all__ = [
    "PieceSnapshot",
    "PieceTask",
    "WarmSlot",
    "fit_piece",
    "fit_piece_to_end",
    "padding_rule",
    "turn",
    "unturn",
]

# The estimated PSNR is withheld for a piece with more than this share of its observed pixels
# at its lowest or highest value: noise clipped at the range's ends is not the Gaussian (or
# Poisson) noise SURE and self-validation assume, and their estimate was off by 1–9 dB on
# clipped uint8 images (docs/benchmarks/history.md).
CLIPPED_LIMIT = 0.01


def clipped_share(unit: np.ndarray, known: np.ndarray | None = None, low: bool = True) -> float:
    """The share of the (known) pixels of ``unit`` at its maximum value or, with ``low``, its
    minimum: a few pixels for unclipped noise, the clipped share for an image clipped to its
    range. (Photon counts leave ``low`` out: zero counts are part of their noise model.)"""
    values = unit if known is None else unit[np.broadcast_to(known, unit.shape)]
    if values.size == 0:
        return 0.0
    at_ends = values == values.max()
    if low:
        at_ends |= values == values.min()
    return float(np.count_nonzero(at_ends)) / values.size


@dataclass(frozen=True, eq=False)
class PieceTask:
    """One piece's fit: ``unit`` (``(C, h, w)`` or ``(C, D, h, w)`` float32 in [0, 1]) and its
    known pixels, upscaled by ``factor``, with the plan's settings, its own copy of the stop
    rule, and ``threads`` torch threads for the thread that runs it (None: as they are)."""

    piece: Piece
    unit: np.ndarray
    known: np.ndarray | None
    factor: int
    preset: engine.Preset
    settings: engine.FitSettings
    perturb_std: float
    tv_weight: float
    device: torch.device
    noise: tuple[str, dict[str, float]]
    rule: engine.StopRule
    threads: int | None = None
    fit_state: Any = None
    psf: np.ndarray | None = None  # deconvolution: the PSF on the network's output grid
    start: WarmSlot | None = None  # warm start: where the part before hands its prior over
    hand_over: WarmSlot | None = None  # where this fit hands its prior to the next part
    fuse: str = "none"  # the classical method its best estimate is blended with at its end


@dataclass(frozen=True, eq=False)
class PieceSnapshot:
    """A piece's progress (see :class:`napari_dip.engine.Snapshot`): ``estimate``,
    ``average`` and ``best`` are numpy float32 in the engine's range, cropped to the piece."""

    step: int
    total_steps: int
    loss: float
    elapsed: float
    estimate: np.ndarray
    average: np.ndarray
    best: np.ndarray
    best_step: int | None
    score: float | None
    scores: tuple[tuple[int, float], ...]
    expected_steps: int | None
    stop_reason: str | None
    estimated_mse: float | None = None  # of ``best``, normalised units² (see SelfValidation)
    estimated_mse_std: float | None = None  # how far that estimate may be off (see spread.py)
    fusion_weight: float | None = None  # the network's share of a fused ``best``


def turn(array: np.ndarray, k: int) -> np.ndarray:
    """Dihedral transform ``k`` (0–7) of the last two axes: ``k % 4`` quarter turns, then a
    left–right flip for ``k >= 4``."""
    if k == 0:
        return array
    out = np.rot90(array, k % 4, axes=(-2, -1))
    return np.ascontiguousarray(out[..., ::-1] if k >= 4 else out)


def unturn(array: np.ndarray, k: int) -> np.ndarray:
    """The inverse of :func:`turn`."""
    if k == 0:
        return array
    out = array[..., ::-1] if k >= 4 else array
    return np.ascontiguousarray(np.rot90(out, -(k % 4), axes=(-2, -1)))


def padding_rule(network_multiple: int, scale: int = 1) -> tuple[int, int]:
    """How the observation is padded for a network: to a multiple of the first value, at least
    the second. The output side (``scale`` × observed) must be a multiple of
    ``network_multiple``, and the deepest scale must keep 2 pixels for reflection padding."""
    multiple = network_multiple // math.gcd(network_multiple, scale)
    return multiple, -(-2 * network_multiple // scale)


def _margin(psf: np.ndarray | None, ndim: int, scale: int) -> tuple[int, ...]:
    """Least padding per spatial axis of the observation: a PSF's reach (in observed pixels)."""
    if psf is None:
        return ()
    reach = [max(m - 1 - m // 2, m // 2) for m in psf.shape]
    reach = [0] * (ndim - len(reach)) + reach  # a 2D PSF on a volume: none along Z
    scales = [1] * (ndim - 2) + [scale, scale]
    return tuple(-(-r // f) for r, f in zip(reach, scales, strict=True))


def _sure_rule(task: PieceTask) -> Any:
    """The rule of ``task`` that fits a SURE pair (or the first of its rules that does)."""
    rules = getattr(task.rule, "rules", [task.rule])
    return next(r for r in rules if r.wants_members)


def _noise_std(task: PieceTask) -> np.ndarray:
    """The noise's standard deviation per pixel of the piece: the model's, or the level the
    piece shows (Gaussian)."""
    name, terms = task.noise
    model = engine.make_noise_model(name, **terms)
    y = torch.from_numpy(task.unit)
    variance = model.variance(y)
    if variance is None:
        return np.full(y.shape, float(engine.noise_level(y[None])), np.float32)
    return variance.sqrt().numpy().astype(np.float32)


def _probe(task: PieceTask, std: np.ndarray) -> np.ndarray:
    """A SURE pair's probe ``δ = scale · s ⊙ b``: ``s`` the noise's standard deviation per
    pixel (``std``), ``b`` standard normal from the seed."""
    draws = torch.Generator().manual_seed(int(task.piece.seed) + 3)
    b = torch.randn(task.unit.shape, generator=draws).numpy()
    return (_sure_rule(task).scale * std * b).astype(np.float32)


def _fused(task: PieceTask, best: np.ndarray, std: np.ndarray) -> Fusion | None:
    """A SURE piece's ``best`` blended with the classical estimate (None: no divergence)."""
    rule = _sure_rule(task)
    if rule.divergence is None:
        return None
    noise, seed = task.noise, int(task.piece.seed) + 4
    return fuse_piece(
        task.fuse, task.unit, best, std, noise, rule.divergence, rule.noise_variance, seed
    )


def _problem(
    task: PieceTask, probe: np.ndarray | None = None
) -> tuple[engine.Problem, tuple[int, ...]]:
    """The engine's problem for a piece (observation padded for the network, the padding
    cropped from every snapshot) and the network's output shape.

    Deconvolution pads by the PSF's reach too and compares only the observed pixels (the
    padding is unknown, not reflected data), so nothing wraps around and the border is fitted
    with the light that comes from outside it."""
    unit, scale = task.unit, task.factor
    net = task.preset.network
    multiple, minimum = padding_rule(net.multiple, scale)
    depth = (net.multiple_z, 2 * net.multiple_z) if unit.ndim == 4 else (1, 0)
    margin = _margin(task.psf, unit.ndim - 1, scale)
    y, offsets = pad_reflect(unit, multiple, minimum, *depth, margin=margin)
    pair = None
    if probe is not None:  # one observation per member: plus and minus the probe
        pair = [
            pad_reflect(unit + sign * probe, multiple, minimum, *depth, margin=margin)[0]
            for sign in (1, -1)
        ]
    scales = (1,) * (unit.ndim - 3) + (scale, scale)  # super-resolution: Y and X only
    region = tuple(
        slice(o * f, (o + n) * f) for o, n, f in zip(offsets, unit.shape[1:], scales, strict=True)
    )
    operators: list[engine.Operator] = []
    if task.psf is not None:
        operators.append(engine.Convolution(task.psf))
    if scale > 1:
        operators.append(engine.Downsample(scale))
    holdout = observed = None
    if task.psf is not None or task.rule.wants_validation:
        # only the observed pixels count (not the padding: it is unknown, or mirrors pixels a
        # holdout keeps out of the fit)
        inside = tuple(slice(o, o + n) for o, n in zip(offsets, unit.shape[1:], strict=True))
        region_mask = np.zeros((1, *y.shape[1:]), np.float32)
        region_mask[(slice(None), *inside)] = 1
        if task.known is not None:
            padded, _ = pad_reflect(
                task.known.astype(np.float32), multiple, minimum, *depth, margin=margin
            )
            region_mask = region_mask * padded
        observed = torch.from_numpy(region_mask)[None]
        y = y * region_mask
        if task.rule.wants_validation:
            draws = torch.Generator().manual_seed(int(task.piece.seed) + 2)
            holdout = engine.holdout_mask(observed, task.rule.share, draws)  # type: ignore[attr-defined]
        else:
            operators.append(engine.Mask(observed))
    elif task.known is not None:  # (reflected known pixels count too, as ever)
        known, _ = pad_reflect(task.known.astype(np.float32), multiple, minimum, *depth)
        operators.append(engine.Mask(torch.from_numpy(known)[None]))
    operator: engine.Operator = engine.Identity()
    if len(operators) == 1:
        operator = operators[0]
    elif operators:
        operator = engine.Composition(operators)
    name, terms = task.noise
    observation = torch.from_numpy(np.ascontiguousarray(y, np.float32))[None]
    if pair is not None:
        observation = torch.from_numpy(np.stack(pair).astype(np.float32))
    problem = engine.Problem(
        observation,
        operator,
        float(task.tv_weight),
        region,  # type: ignore[arg-type]
        engine.make_noise_model(name, **terms),
        holdout=holdout,
        observed=observed,
    )
    out_shape = tuple(n * f for n, f in zip(y.shape[1:], scales, strict=True))
    return problem, out_shape


class WarmSlot:
    """A fitted prior handed from a piece to its counterpart (same tile and member) in the
    next part of a stack, within one process. The counterpart may start before this piece
    ends (pieces run side by side): :meth:`take` waits, so the result does not depend on
    timing. A piece that fails hands over nothing (its successor starts cold).
    """

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._weights: dict[str, torch.Tensor] | None = None

    def put(self, weights: dict[str, torch.Tensor] | None) -> None:
        if not self._ready.is_set():
            self._weights = weights
            self._ready.set()

    def take(self, should_stop: Callable[[], bool] | None = None) -> dict[str, torch.Tensor] | None:
        """The weights once handed over (None: nothing came, or the run was asked to stop)."""
        while not self._ready.wait(0.05):
            if should_stop is not None and should_stop():
                return None
        weights, self._weights = self._weights, None  # one taker: free them once taken
        return weights


def fit_piece(
    task: PieceTask, should_stop: Callable[[], bool] | None = None
) -> Iterator[PieceSnapshot]:
    """Fit one piece, yielding a :class:`PieceSnapshot` every ``settings.snapshot_every``
    steps; the last has ``stop_reason`` set. Runs on the thread that iterates it (with
    ``task.threads`` torch threads when set). With ``task.start``, it first waits for the
    part before to hand its fitted prior over, and starts from it."""
    try:
        yield from _fit(task, should_stop)
    finally:
        if task.hand_over is not None:
            task.hand_over.put(None)  # failed or closed early: its successor starts cold


def _fit(task: PieceTask, should_stop: Callable[[], bool] | None) -> Iterator[PieceSnapshot]:
    if task.threads is not None:
        use_threads(task.threads)
    k = task.piece.transform
    if k:  # an ensemble member: its own view of the piece, turned back in every snapshot
        task = replace(
            task,
            unit=turn(task.unit, k),
            known=None if task.known is None else turn(task.known, k),
            psf=None if task.psf is None else turn(task.psf, k),
        )
    std = _noise_std(task) if task.rule.wants_members else None
    probe = None if std is None else _probe(task, std)
    problem, out_shape = _problem(task, probe)
    held = None  # inpainting fused with the biharmonic fill: the pixels the fit holds out
    if task.fuse == "biharmonic" and problem.holdout is not None and task.known is not None:
        held = problem.holdout[0][(slice(None), *problem.region)].numpy() > 0
    # once per piece, and only for a rule that estimates its error
    clipped = hasattr(task.rule, "estimated_mse") and (
        clipped_share(task.unit, task.known, low=task.noise[0] == "gaussian") > CLIPPED_LIMIT
    )
    device = task.device
    priors = [
        engine.build_prior(
            task.preset,
            out_shape,
            task.unit.shape[0],
            perturb_std=task.perturb_std,
            seed=int(task.piece.seed),  # a SURE pair starts alike: it differs by the probe only
            device=device,
        )
        for _ in range(1 if probe is None else 2)
    ]
    prior = priors[0] if len(priors) == 1 else engine.Members(priors).to(device)
    if task.start is not None:  # the same tile and member of the part before: the same prior
        weights = task.start.take(should_stop)
        if weights is not None:
            prior.load_state_dict(weights)
            task.rule.warm_started()
    generator = torch.Generator(device=device).manual_seed(int(task.piece.seed) + 1)
    for snap in engine.fit(
        problem.to(device),
        prior,
        task.settings,
        generator=generator,
        should_stop=should_stop,
        stop_rule=task.rule,
        state=task.fit_state,
    ):
        best = (snap.average if snap.best is None else snap.best).numpy()
        mse = None if clipped else getattr(task.rule, "estimated_mse", None)
        mse_std = None if mse is None else getattr(task.rule, "estimated_mse_std", None)
        weight = None
        ended = snap.stop_reason is not None and not (should_stop is not None and should_stop())
        if ended and held is not None:
            fusion = fuse_filled(task.unit, task.known, held, best)  # type: ignore[arg-type]
            best, weight = fusion.estimate, fusion.weight
        elif ended and task.fuse != "none" and std is not None:
            fusion = _fused(task, best, std)
            if fusion is not None:
                best, weight = fusion.estimate, fusion.weight
                mse = None if mse is None else _sure_rule(task).trusted(fusion.mse)
                mse_std = None if mse is None else _sure_rule(task).spread(mse)
        if task.hand_over is not None and snap.stop_reason is not None:
            task.hand_over.put(
                {k: v.detach().to("cpu", copy=True) for k, v in prior.state_dict().items()}
            )
        yield PieceSnapshot(
            step=snap.step,
            total_steps=snap.total_steps,
            loss=snap.loss,
            elapsed=snap.elapsed,
            estimate=unturn(snap.estimate.numpy(), k),
            average=unturn(snap.average.numpy(), k),
            best=unturn(best, k),
            best_step=snap.best_step,
            score=snap.score,
            scores=snap.scores,
            expected_steps=snap.expected_steps,
            stop_reason=snap.stop_reason,
            estimated_mse=mse,
            estimated_mse_std=mse_std,
            fusion_weight=weight,
        )


def fit_piece_to_end(task: PieceTask) -> PieceSnapshot:
    """Run a piece to its end and return its last snapshot with every score of the run (what
    a remote worker sends back)."""
    scores: list[tuple[int, float]] = []
    last = None
    for last in fit_piece(task):
        scores.extend(last.scores)
    assert last is not None
    return PieceSnapshot(**{**vars(last), "scores": tuple(scores)})
