"""Fitting one piece: its inputs in, the engine's problem and prior built, snapshots out.

A :class:`PieceTask` holds everything a fit needs as plain, picklable values (numpy arrays and
frozen settings), so any executor — a thread here, a Dask worker elsewhere — can run it with
:func:`fit_piece`. Snapshots come back as :class:`PieceSnapshot`: numpy copies in the engine's
normalised range, owned by whoever receives them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import engine
from .._arrays import pad_reflect
from .plan import Piece
from .threads import use_threads

__all__ = ["PieceSnapshot", "PieceTask", "fit_piece", "fit_piece_to_end", "padding_rule"]


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


def padding_rule(network_multiple: int, scale: int = 1) -> tuple[int, int]:
    """How the observation is padded for a network: to a multiple of the first value, at least
    the second. The output side (``scale`` × observed) must be a multiple of
    ``network_multiple``, and the deepest scale must keep 2 pixels for reflection padding."""
    multiple = network_multiple // math.gcd(network_multiple, scale)
    return multiple, -(-2 * network_multiple // scale)


def _problem(task: PieceTask) -> tuple[engine.Problem, tuple[int, ...]]:
    """The engine's problem for a piece (observation padded for the network, the padding
    cropped from every snapshot) and the network's output shape."""
    unit, scale = task.unit, task.factor
    net = task.preset.network
    multiple, minimum = padding_rule(net.multiple, scale)
    depth = (net.multiple_z, 2 * net.multiple_z) if unit.ndim == 4 else (1, 0)
    y, offsets = pad_reflect(unit, multiple, minimum, *depth)
    scales = (1,) * (unit.ndim - 3) + (scale, scale)  # super-resolution: Y and X only
    region = tuple(
        slice(o * f, (o + n) * f) for o, n, f in zip(offsets, unit.shape[1:], scales, strict=True)
    )
    operator: engine.Operator = engine.Identity()
    if task.known is not None:
        known, _ = pad_reflect(task.known.astype(np.float32), multiple, minimum, *depth)
        operator = engine.Mask(torch.from_numpy(known)[None])
    if scale > 1:
        operator = engine.Downsample(scale)
    name, terms = task.noise
    problem = engine.Problem(
        torch.from_numpy(y)[None],
        operator,
        float(task.tv_weight),
        region,  # type: ignore[arg-type]
        engine.make_noise_model(name, **terms),
    )
    out_shape = tuple(n * f for n, f in zip(y.shape[1:], scales, strict=True))
    return problem, out_shape


def fit_piece(
    task: PieceTask, should_stop: Callable[[], bool] | None = None
) -> Iterator[PieceSnapshot]:
    """Fit one piece, yielding a :class:`PieceSnapshot` every ``settings.snapshot_every``
    steps; the last has ``stop_reason`` set. Runs on the thread that iterates it (with
    ``task.threads`` torch threads when set)."""
    if task.threads is not None:
        use_threads(task.threads)
    problem, out_shape = _problem(task)
    device = task.device
    prior = engine.build_prior(
        task.preset,
        out_shape,
        task.unit.shape[0],
        perturb_std=task.perturb_std,
        seed=int(task.piece.seed),
        device=device,
    )
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
        yield PieceSnapshot(
            step=snap.step,
            total_steps=snap.total_steps,
            loss=snap.loss,
            elapsed=snap.elapsed,
            estimate=snap.estimate.numpy(),
            average=snap.average.numpy(),
            best=(snap.average if snap.best is None else snap.best).numpy(),
            best_step=snap.best_step,
            score=snap.score,
            scores=snap.scores,
            expected_steps=snap.expected_steps,
            stop_reason=snap.stop_reason,
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
