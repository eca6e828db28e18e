"""One job's state during a run: which parts are read, which pieces run or ended, what they
gave, and the snapshots that say so. Lives on the thread that consumes the run."""

from __future__ import annotations

import math
import time

import numpy as np

from .assembly import UNCERTAINTY_FACTORS, Members, Mosaic, PartView, StackView, frozen, spread
from .fitting import PieceSnapshot
from .plan import JobPlan, Piece
from .prepare import PartData
from .snapshot import RANGE_STDS, Snapshot

__all__ = ["JobState"]

STOPPED = "stopped on request"


class JobState:
    """The run's record of one job (see :func:`.run.run_jobs`)."""

    def __init__(self, plan: JobPlan, previews: bool) -> None:
        self.plan = plan
        self.previews = previews
        stack = plan.request.stack
        self.noun = "volume" if stack is not None and stack.mode == "volume" else "slice"
        self.start = time.perf_counter()
        self.data: dict[int, PartData] = {}
        self.mosaics: dict[int, Mosaic] = {}
        self.running: dict[Piece, PieceSnapshot] = {}
        self.left: dict[int, int] = {}  # prepared parts: pieces not ended yet
        self.views: dict[int, PartView] = {}  # the latest view of each part fitted whole
        self.finished: list[np.ndarray | None] = [None] * len(plan.parts)
        self.members = Members(plan.members)
        self.spreads: dict[int, Mosaic | np.ndarray] = {}  # members' variance, per part
        self.finished_spread: list[np.ndarray | None] = [None] * len(plan.parts)
        self.errors_sq: list[float] = []  # estimated mean squared errors, caller units²
        # their own standard deviations (nan: not known), caller units², per part and tile
        self.errors_std: dict[tuple[int, int | None], list[float]] = {}
        self.unestimated = 0  # finished pieces with no estimate (withheld, or none made)
        self.fusion_weights: list[float] = []  # the network's share in each fused piece
        self.peak = 0.0  # the intensity range a PSNR is taken against
        self.final_view: PartView | None = None  # the view of the part that ended last
        self.final_part = -1
        self.last_tile: dict[int, str] = {}  # a part's last tile's stop reason
        self.reasons: list[str] = []
        self.failures: list[str] = []
        self.errors: list[BaseException] = []
        self.warned: set[type[Warning]] = set()
        self.failed_parts: set[int] = set()
        self.camera = None
        self.noise = plan.request.options.noise
        self.report: tuple[Piece, PieceSnapshot] | None = None
        self.started = self.ended = self.by_themselves = self.steps_done = 0
        self.work = 0  # ended pieces' share of the bar: their ceiling, or their steps if stopped
        self.parts_done = 0
        self.prepared = self.restored = self.stopped = self.issued = False

    # --- recording ----------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.parts_done == len(self.plan.parts)

    def keep(self, part: int, reason: str) -> None:
        """A part kept as it is (constant: nothing to restore)."""
        self.reasons.append(reason)
        self.parts_done += 1
        self.work += self.plan.tiles_per_part * self.plan.settings.steps

    def prepare(self, part: int, data: PartData, mosaic: Mosaic | None = None) -> None:
        self.data[part] = data
        self.prepared = True
        self.left[part] = self.plan.pieces_per_part
        self.camera = data.camera
        self.noise = data.noise[0]  # the model used (noise="auto": the one the image showed)
        dtype = data.layout.dtype
        if np.issubdtype(dtype, np.integer):
            self.peak = float(np.iinfo(dtype).max) - float(np.iinfo(dtype).min)
        else:
            self.peak = max(self.peak, data.layout.hi - data.layout.lo)
        if mosaic is not None:
            self.mosaics[part] = mosaic
            if self.plan.members > 1:
                self.spreads[part] = Mosaic(mosaic.tiles, mosaic.values.shape[0], None)

    def _where(self, part: int, piece: Piece | None) -> str:
        words = [f"{self.noun} {part}"] if self.plan.request.stack is not None else []
        if piece is not None and piece.tile is not None:
            words.append(f"tile {piece.tile + 1}")
        return (" ".join(words) + ": ") if words else ""

    def fail(self, part: int, piece: Piece | None, error: BaseException) -> None:
        """A part that could not be prepared (``piece`` None), or a piece whose fit raised."""
        self.failures.append(f"{self._where(part, piece)}{type(error).__name__}: {error}")
        self.errors.append(error)
        self.failed_parts.add(part)
        if piece is None:
            self.parts_done += 1
            self.work += self.plan.tiles_per_part * self.plan.settings.steps
            return
        self.running.pop(piece, None)
        self.ended += 1
        self.work += self.plan.settings.steps
        self._combine(piece, None)
        self._ended(part)

    def finish(self, piece: Piece, snap: PieceSnapshot) -> None:
        """A piece's last snapshot: its best estimate goes in."""
        part = piece.part
        self.running.pop(piece, None)
        self.ended += 1
        self.steps_done += snap.step
        self.restored = True
        self.report = piece, snap
        if snap.stop_reason == STOPPED:
            self.stopped = True
            self.work += snap.step
        else:
            self.by_themselves += 1
            self.work += self.plan.settings.steps
        if snap.estimated_mse is not None:
            layout = self.data[part].layout
            scale = (layout.hi - layout.lo) ** 2
            self.errors_sq.append(snap.estimated_mse * scale)
            std = snap.estimated_mse_std
            where = self.errors_std.setdefault((part, piece.tile), [])
            where.append(math.nan if std is None else std * scale)
        else:
            self.unestimated += 1
        if snap.fusion_weight is not None:
            self.fusion_weights.append(snap.fusion_weight)
        self._combine(piece, (snap.estimate, snap.average, snap.best))
        if piece.tile is not None and piece.tile == self.plan.tiles_per_part - 1:
            self.last_tile[part] = snap.stop_reason or ""
        self._ended(part)

    def _combine(self, piece: Piece, arrays: tuple | None) -> None:
        """A member's arrays in; once a tile's (or part's) members are all in, their mean
        goes into the part and their variance into its spread."""
        part = piece.part
        done = self.members.add((part, piece.tile), arrays)
        if done is None:
            return
        mean, variance = done
        if piece.tile is None:
            if mean is not None:
                self.views[part] = self._piece_view(part, *mean)
            if variance is not None:
                self.spreads[part] = variance
            return
        self.mosaics[part].add(piece.tile, None if mean is None else mean[2])
        if variance is not None:
            self.spreads[part].add(piece.tile, variance)  # type: ignore[union-attr]

    def _ended(self, part: int) -> None:
        self.left[part] -= 1
        if self.left[part]:
            return
        view = self._view(part)  # everything in: no overlays
        if view is not None:
            self.finished[part] = frozen(view.get("best"))
            self.final_view, self.final_part = view, part
        variance = self.spreads.pop(part, None)
        if variance is not None:
            if isinstance(variance, Mosaic):
                variance = variance.values
            self.finished_spread[part] = frozen(
                spread(
                    variance,
                    self.data[part].layout,
                    self._volume,
                    UNCERTAINTY_FACTORS[self.plan.request.task],
                )
            )
        self.reasons.append(self._part_reason(part))
        self.parts_done += 1
        self.data.pop(part, None)
        self.mosaics.pop(part, None)
        self.views.pop(part, None)

    def _part_reason(self, part: int) -> str:
        if part in self.failed_parts:
            return "failed"
        if self.plan.tiles is None:
            report = self.report
            return "" if report is None or report[0].part != part else report[1].stop_reason or ""
        n = self.plan.tiles_per_part
        if part in self.last_tile and self.last_tile[part] != STOPPED:
            return f"all {n} tiles done; last tile: {self.last_tile[part]}"
        return STOPPED

    # --- views --------------------------------------------------------------------------------

    @property
    def _volume(self):  # type: ignore[no-untyped-def]
        stack = self.plan.request.stack
        return stack if stack is not None and stack.mode == "volume" else None

    def _piece_view(
        self, part: int, estimate: np.ndarray, average: np.ndarray, best: np.ndarray
    ) -> PartView:
        return PartView(
            self.data[part].layout,
            estimate=frozen(estimate),
            average=frozen(average),
            best=frozen(best),
            volume=self._volume,
        )

    def _running(self, part: int) -> dict[int | None, list[PieceSnapshot]]:
        """The running members of part ``part``, by tile."""
        out: dict[int | None, list[PieceSnapshot]] = {}
        for p, s in self.running.items():
            if p.part == part:
                out.setdefault(p.tile, []).append(s)
        return out

    def _view(self, part: int) -> PartView | None:
        """What part ``part`` shows now: its piece's latest output, or its mosaic with the
        running tiles over it; None when nothing of it has run."""
        running = self._running(part)
        mean = self.members.running
        if part in self.mosaics:
            mosaic = self.mosaics[part]
            values, weight = mosaic.freeze()
            over = {t: mean([s.best for s in snaps]) for t, snaps in running.items()}
            return PartView(
                self.data[part].layout,
                values=values,
                weight=weight,
                overlays=mosaic.overlays(over),  # type: ignore[arg-type]
            )
        if None not in running and part not in self.views:  # members that ended, not all
            ended = [g for g in self.members.groups.get((part, None), []) if g is not None]
            if ended and part in self.data:
                return self._piece_view(part, *(mean([g[i] for g in ended]) for i in range(3)))
        if None in running:
            snaps = running[None]
            return self._piece_view(
                part,
                mean([s.estimate for s in snaps]),
                mean([s.average for s in snaps]),
                mean([s.best for s in snaps]),
            )
        return self.views.get(part)

    def _stack(self) -> StackView | None:
        request = self.plan.request
        if request.stack is None:
            return None
        parts = {p.part for p in self.running} | set(self.mosaics)
        running = tuple((k, v) for k in sorted(parts) if (v := self._view(k)) is not None)
        return StackView(
            request.stack,
            request.factor,
            request.image,
            tuple(self.finished),
            running,
            tuple(self.finished_spread),
        )

    # --- snapshots ----------------------------------------------------------------------------

    def _progress(self, report: PieceSnapshot | None, final: bool) -> dict:
        plan = self.plan
        per_piece = plan.settings.steps
        step = self.steps_done + sum(s.step for s in self.running.values())
        waiting = plan.piece_count - self.ended - len(self.running)  # not started or no report
        left = sum(per_piece - s.step for s in self.running.values()) + waiting * per_piece
        expected = step if final else None
        hint = None if report is None else report.expected_steps
        typical = self.steps_done / self.by_themselves if self.by_themselves else hint
        if typical is not None and not final:
            this = 0.0
            for s in self.running.values():
                own = s.expected_steps if s.expected_steps is not None else typical
                this += max(own, s.step) - s.step
            expected = step + round(this + waiting * typical)
        offset = step - (0 if report is None else report.step)
        best = None if report is None else report.best_step
        return {
            "step": step,
            "work": self.work + sum(s.step for s in self.running.values()),
            "total_steps": per_piece * plan.piece_count,
            "loss": float("nan") if report is None else report.loss,
            "score": None if report is None else report.score,
            "scores": () if report is None else tuple((offset + s, v) for s, v in report.scores),
            "best_step": None if best is None else offset + best,
            "expected_steps": None if expected is None else min(expected, step + left),
            "piece_step": 0 if report is None else report.step,
            "piece_stop_reason": None if report is None else report.stop_reason,
            "piece_elapsed": 0.0 if report is None else report.elapsed,
            "piece_total_steps": per_piece,
        }

    def _snapshot(self, piece: Piece | None, report: PieceSnapshot | None, **fields) -> Snapshot:
        plan, request = self.plan, self.plan.request
        part = 0 if piece is None else piece.part
        return Snapshot(
            elapsed=time.perf_counter() - self.start,
            dtype=np.dtype(request.image.dtype),
            camera=self.camera,
            noise=self.noise,
            job=plan.number,
            part=part,
            parts=len(plan.parts),
            index=plan.parts[part],
            tile=None if piece is None else piece.tile,
            tiles=plan.tiles_per_part,
            pieces=plan.piece_count,
            pieces_done=self.ended,
            pieces_running=len(self.running),
            reasons=tuple(self.reasons),
            failures=tuple(self.failures),
            estimated_psnr=self._estimated_psnr(),
            estimated_psnr_range=self._estimated_range(),
            fusion_weight=float(np.mean(self.fusion_weights)) if self.fusion_weights else None,
            spread=None if request.stack is not None else self.finished_spread[0],
            **fields,
        )

    def _estimated_psnr(self) -> float | None:
        """The PSNR the held-out pixels predict for what is restored so far (None: no
        estimate, an estimated error at or below 0, or a finished piece without one: a mean
        over the other tiles or slices would pass for the whole image's)."""
        if not self.errors_sq or not self.peak or self.unestimated:
            return None
        error = float(np.mean(self.errors_sq))
        return 10 * math.log10(self.peak**2 / error) if error > 0 else None

    def _estimated_range(self) -> tuple[float, float] | None:
        """The PSNRs at the estimated error ± ``RANGE_STDS`` of its own standard deviations
        (tiles and slices see independent noise, so their spreads add in quadrature; ensemble
        members of one piece see the same noise, so theirs are averaged); ``inf`` above where
        the error could be 0; None without an estimate or a known spread."""
        if self._estimated_psnr() is None:
            return None
        spreads = [float(np.mean(stds)) for stds in self.errors_std.values()]
        if not all(map(math.isfinite, spreads)):
            return None
        error = float(np.mean(self.errors_sq))
        std = math.sqrt(sum(s * s for s in spreads)) / len(spreads)
        low, high = error - RANGE_STDS * std, error + RANGE_STDS * std
        top = 10 * math.log10(self.peak**2 / low) if low > 0 else math.inf
        return 10 * math.log10(self.peak**2 / high), top

    def snapshot(self, piece: Piece, report: PieceSnapshot) -> Snapshot:
        """A snapshot as ``piece`` reports ``report`` (before the job's last)."""
        view = stack = None
        if self.previews:
            view = self._view(piece.part)
            if view is None and self.final_part == piece.part:  # it has just ended
                view = self.final_view
            stack = self._stack()
        fields = self._progress(report, final=False)
        return self._snapshot(piece, report, stop_reason=None, view=view, stack=stack, **fields)

    def last(self, stopped: bool) -> Snapshot:
        """The job's last snapshot: why it ended, and everything it restored."""
        stopped = (stopped and not self.complete) or self.stopped
        piece, report = self.report if self.report is not None else (None, None)
        if stopped:
            reason = STOPPED
        elif self.plan.request.stack is not None:
            last = self.reasons[-1] if self.reasons else ""
            reason = f"{len(self.reasons)} {self.noun}s done; the last: {last}"
        else:
            reason = self.reasons[-1] if self.reasons else STOPPED
        if self.failures:
            reason += f"; {len(self.failures)} failed, first: {self.failures[0]}"
        fields = self._progress(report, final=True)
        view = self.final_view
        if piece is not None and (piece.part in self.mosaics or piece.part in self.views):
            view = self._view(piece.part)
        stack = self._stack()
        return self._snapshot(piece, report, stop_reason=reason, view=view, stack=stack, **fields)
