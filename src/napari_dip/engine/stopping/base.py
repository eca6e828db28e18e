"""The stop-rule protocol (see :mod:`napari_dip.engine.stopping`) and the rules every other
builds on: the fixed budget and the minimum tracker of the variance rules."""

from __future__ import annotations

import torch

__all__ = ["KEEP", "FixedBudget", "StopRule"]

KEEP = ("estimate", "average")


class StopRule:
    """Base class: score bookkeeping, host read-back and the triggered state.

    Subclasses implement :meth:`_observe` (device work, returns a 0-d score tensor or ``None``)
    and :meth:`_decide` (host work on the scores just read back, returns a reason to stop or
    ``None``).
    """

    name = "rule"
    wants_validation = False  # whether the fit should hold pixels out for this rule
    wants_members = False  # whether the rule looks at every member of a lock-step ensemble

    def __init__(self, *, keep: str = "average", check_every: int = 10) -> None:
        if keep not in KEEP:
            raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
        if int(check_every) != check_every or check_every < 1:
            raise ValueError(f"check_every must be a positive integer, got {check_every!r}")
        self.keep = keep
        self.check_every = int(check_every)
        self.warm = False  # see warm_started; kept over reset(): it is about the fit's start
        self.reset()

    # --- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: ready for a new run."""
        self.scores: list[tuple[int, float]] = []
        self.triggered = False
        self.reason: str | None = None
        self.stop_step: int | None = None
        self._pending_steps: list[int] = []
        self._pending: list[torch.Tensor] = []
        self._step = 0
        self._best: torch.Tensor | None = None
        self._best_step: int | torch.Tensor | None = None
        self._loss: torch.Tensor | None = None
        self._validation: tuple[torch.Tensor, torch.Tensor] | None = None
        self._members: torch.Tensor | None = None
        self._latest: torch.Tensor | None = None  # see _remember
        self._latest_step = 0

    @property
    def score(self) -> float | None:
        """The latest score read back (``None`` before the first)."""
        return self.scores[-1][1] if self.scores else None

    @property
    def best(self) -> torch.Tensor | None:
        """The chosen estimate (on the fit's device), ``None`` before the rule has one."""
        return self._best

    @property
    def best_step(self) -> int | None:
        """The step of :attr:`best` (a host sync if it is kept on the device)."""
        if isinstance(self._best_step, torch.Tensor):
            step = int(self._best_step)
            return step if step > 0 else None
        return self._best_step

    def _remember(self, keep: torch.Tensor, step: int) -> None:
        """Hold a reference to the latest kept tensor (no copy: it may change in place)."""
        self._latest, self._latest_step = keep, step

    def _freeze_latest(self) -> None:
        """The rule decided at this check: the latest kept tensor becomes its choice."""
        assert self._latest is not None
        self._best, self._best_step = self._latest.clone(), self._latest_step

    @property
    def expected_stop(self) -> int | None:
        """The step where the rule will stop if nothing changes (``None``: no idea yet).

        Progress displays use it for the time left: with an automatic stop the step budget is
        only a ceiling, far beyond where runs usually end.
        """
        return None

    # --- protocol ---------------------------------------------------------------------------

    def prepare(self, problem: object) -> None:
        """Look at the problem before the first step (the fit loop calls it after
        :meth:`reset`); most rules need nothing from it."""

    def warm_started(self) -> None:
        """The fit starts from a neighbour's fitted weights (a warm-started slice or frame),
        not from scratch: a rule whose guards are for a cold start's first steps may relax
        them. Called before the fit; kept over :meth:`reset`."""
        self.warm = True

    def observe(
        self,
        step: int,
        estimate: torch.Tensor,
        average: torch.Tensor,
        loss: torch.Tensor | None = None,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None,
        members: torch.Tensor | None = None,
    ) -> None:
        """Watch the output of ``step`` (and its data term ``loss``, a 0-d device tensor, the
        held-out data term and squared error of the average when the problem holds pixels
        out, and the members' averages of a lock-step ensemble); device work only, no host
        sync."""
        if self.triggered:
            return
        self._step = step
        self._loss = loss
        self._validation = validation
        self._members = members
        keep = estimate if self.keep == "estimate" else average
        score = self._observe(step, estimate.detach(), keep.detach())
        if score is not None:
            self._pending_steps.append(step)
            self._pending.append(score.detach().reshape(()))

    def flush(self) -> list[tuple[int, float]]:
        """Read the pending scores back to the host (one transfer); returns the new pairs."""
        if not self._pending:
            return []
        values = torch.stack(self._pending).to("cpu", torch.float64).tolist()
        new = list(zip(self._pending_steps, values, strict=True))
        self._pending, self._pending_steps = [], []
        self.scores.extend(new)
        self._on_scores(new)
        return new

    def check(self, step: int) -> bool:
        """Read back the new scores and decide; True once the rule wants the run to stop."""
        if self.triggered:
            return True
        self.flush()
        reason = self._decide(step)
        if reason is not None:
            self.triggered = True
            self.stop_step = step
            self.reason = reason
        return self.triggered

    # --- subclass hooks ---------------------------------------------------------------------

    def _observe(
        self, step: int, estimate: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor | None:
        raise NotImplementedError

    def _on_scores(self, new: list[tuple[int, float]]) -> None:
        """Host-side bookkeeping for newly read scores (called by :meth:`flush`)."""

    def _decide(self, step: int) -> str | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        return f"keep={self.keep!r}"


class FixedBudget(StopRule):
    """The plain behaviour: never stops by itself; ``best`` is the latest kept tensor.

    Holds a reference to the latest tensor (no copy), so callers must copy ``best`` at once.
    """

    name = "budget"

    def __init__(self, *, keep: str = "average", check_every: int = 10) -> None:
        super().__init__(keep=keep, check_every=check_every)

    def _observe(self, step, estimate, keep):  # type: ignore[override]
        self._best, self._best_step = keep, step
        return None

    def _decide(self, step: int) -> str | None:
        return None


class _MinimumTracker(StopRule):
    """Shared by the variance rules: track the score's minimum on the device (no sync) and
    stop when it has not improved for ``patience`` steps. With ``min_gain`` only a score at
    least that fraction under the one that last restarted the count restarts it: a minimum
    that creeps down slower ends the run, and ``best`` is still the lowest-scoring estimate."""

    def __init__(
        self,
        *,
        patience: int,
        keep: str,
        check_every: int,
        burn_in: int = 0,
        tolerance: float = 0.0,
        min_gain: float = 0.0,
    ) -> None:
        if int(patience) != patience or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if int(burn_in) != burn_in or burn_in < 0:
            raise ValueError(f"burn_in must be an integer >= 0, got {burn_in!r}")
        if not 0 <= tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
        if not 0 <= min_gain < 1:
            raise ValueError(f"min_gain must be in [0, 1), got {min_gain!r}")
        self.min_gain = float(min_gain)  # see the class docstring
        self.patience = int(patience)
        self.burn_in = int(burn_in)  # no minimum is taken before this step
        self.tolerance = float(tolerance)  # a score this close to the minimum counts as it
        super().__init__(keep=keep, check_every=check_every)

    def reset(self) -> None:
        super().reset()
        self._min: torch.Tensor | None = None
        self._anchor: torch.Tensor | None = None  # the score that last restarted the count
        self._anchor_step: torch.Tensor | None = None

    def _track(self, step: int, score: torch.Tensor, keep: torch.Tensor) -> torch.Tensor | None:
        """Take ``score`` in; returns whether this step is now the best (a 0-d device
        tensor), None before ``burn_in``."""
        if step < self.burn_in:
            return None
        if self._min is None:
            self._min = score.clone()
            self._best = keep.clone()
            self._best_step = torch.tensor(step, device=score.device)
            self._anchor, self._anchor_step = score.clone(), self._best_step.clone()
            return torch.ones((), dtype=torch.bool, device=score.device)
        if self.min_gain:
            gained = score < self._anchor * (1 - self.min_gain)
            torch.where(gained, score, self._anchor, out=self._anchor)
            self._anchor_step = torch.where(gained, step, self._anchor_step)
        better = score < self._min
        torch.minimum(self._min, score, out=self._min)
        if self.tolerance:  # the latest step on the minimum's plateau
            better |= score <= self._min * (1 + self.tolerance)
        self._best_step = torch.where(better, step, self._best_step)
        torch.where(better, keep, self._best, out=self._best)  # in place: no per-step alloc
        return better

    @staticmethod
    def _at_best(
        held: torch.Tensor | None, value: torch.Tensor, better: torch.Tensor
    ) -> torch.Tensor:
        """``held`` with ``value`` taken in where ``better`` (from :meth:`_track`), in place;
        a copy of ``value`` when nothing is held yet: a companion of the best estimate."""
        if held is None:
            return value.clone()
        return torch.where(better, value, held, out=held)

    @property
    def expected_stop(self) -> int | None:
        """Patience steps after the current minimum: where the run ends unless a new one comes."""
        if self.triggered:
            return self.stop_step
        since = self._counting_from() if self._min is not None else None
        return None if since is None else since + self.patience

    def _counting_from(self) -> int | None:
        """The step the patience count runs from: the minimum's, or with ``min_gain`` the
        last score that gained that much (a host sync)."""
        if self.min_gain and self._anchor_step is not None:
            return int(self._anchor_step)
        return self.best_step

    def _no_gain(self, step: int, since: int) -> str:
        """How long (from ``since``, :meth:`_counting_from`) the score has not improved, for a
        stop reason."""
        if self.min_gain:
            return f"no {self.min_gain:.1%} gain for {step - since} steps"
        return f"no new minimum for {step - since} steps"

    def _decide(self, step: int) -> str | None:
        if self._min is None:
            return None
        since = self._counting_from()
        if since is None or step - since < self.patience:
            return None
        return self._reason(step, since)

    def _reason(self, step: int, since: int) -> str:
        """Why the run stops at ``step`` (the count ran from ``since``); rules reword it."""
        within = f" (within {self.tolerance:.0%})" if self.tolerance else ""
        return (
            f"{self.label}: variance minimum{within} at step {self.best_step}, "
            f"{self._no_gain(step, since)}"
        )

    label = "ES"
