"""Several rules on one run: the first to stop decides (:class:`FirstOf`), or all watch
without stopping it (:class:`Panel`, for benchmarks)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .base import StopRule

__all__ = ["FirstOf", "Panel"]


class _Group(StopRule):
    """Rules watching one run together: each member sees every step and keeps its own state."""

    def __init__(self, rules: Iterable[StopRule], *, keep: str, check_every: int) -> None:
        self.rules = list(rules)
        if not self.rules:
            raise ValueError(f"{type(self).__name__} needs at least one rule")
        super().__init__(keep=keep, check_every=check_every)

    def reset(self) -> None:
        super().reset()
        for rule in getattr(self, "rules", []):  # reset() runs once before self.rules exists
            rule.reset()

    def prepare(self, problem: object) -> None:
        for rule in self.rules:
            rule.prepare(problem)

    def warm_started(self) -> None:
        super().warm_started()
        for rule in self.rules:
            rule.warm_started()

    def observe(
        self,
        step: int,
        estimate: torch.Tensor,
        average: torch.Tensor,
        loss: torch.Tensor | None = None,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None,
        members: torch.Tensor | None = None,
    ) -> None:
        if self.triggered:
            return
        for rule in self.rules:
            rule.observe(step, estimate, average, loss, validation, members)

    @property
    def wants_members(self) -> bool:  # type: ignore[override]
        return any(rule.wants_members for rule in getattr(self, "rules", []))

    @property
    def wants_validation(self) -> bool:  # type: ignore[override]
        return any(rule.wants_validation for rule in getattr(self, "rules", []))

    @property
    def estimated_mse(self) -> float | None:
        """The first member's estimate of the result's error, if a member makes one."""
        for rule in self.rules:
            value = getattr(rule, "estimated_mse", None)
            if value is not None:
                return value
        return None

    @property
    def estimated_mse_std(self) -> float | None:
        """The spread of :attr:`estimated_mse`, from the member that makes it."""
        for rule in self.rules:
            if getattr(rule, "estimated_mse", None) is not None:
                return getattr(rule, "estimated_mse_std", None)
        return None

    @property
    def share(self) -> float:
        """The held-out share of the first member that holds pixels out."""
        return next(r.share for r in self.rules if r.wants_validation)  # type: ignore[attr-defined]


class FirstOf(_Group):
    """Several rules on one run: stop as soon as one of them stops, with its choice.

    Until then ``best`` is the first member's, and the scores shown are the first member's.
    """

    name = "first"

    def __init__(self, rules: Iterable[StopRule], *, check_every: int = 10) -> None:
        rules = list(rules)
        super().__init__(rules, keep=rules[0].keep if rules else "average", check_every=check_every)

    def reset(self) -> None:
        super().reset()
        self.decider: StopRule | None = None  # the member that stopped the run

    def describe(self) -> str:
        return ", ".join(repr(rule) for rule in self.rules)

    def flush(self) -> list[tuple[int, float]]:
        new = self.rules[0].flush()  # the scores shown are the first member's
        for rule in self.rules[1:]:
            rule.flush()
        self.scores.extend(new)
        return new

    def check(self, step: int) -> bool:
        if self.triggered:
            return True
        self.flush()
        for rule in self.rules:
            if step % rule.check_every == 0 and rule.check(step):
                self.decider, self.reason = rule, rule.reason
                self.triggered, self.stop_step = True, step
                break
        return self.triggered

    @property
    def _lead(self) -> StopRule:
        return self.decider or self.rules[0]

    @property
    def best(self) -> torch.Tensor | None:
        return self._lead.best

    @property
    def best_step(self) -> int | None:
        return self._lead.best_step

    @property
    def expected_stop(self) -> int | None:
        if self.triggered:
            return self.stop_step
        steps = [s for s in (rule.expected_stop for rule in self.rules) if s is not None]
        return min(steps) if steps else None


class Panel(_Group):
    """Several rules watching the same run; never stops by itself (for benchmarks).

    Each member keeps its own state: once a member is triggered it freezes with the step,
    estimate and reason it would have stopped at, while the run goes on for the others.
    """

    name = "panel"

    def __init__(self, rules: Iterable[StopRule], *, check_every: int = 10) -> None:
        super().__init__(rules, keep="estimate", check_every=check_every)

    def flush(self) -> list[tuple[int, float]]:
        for rule in self.rules:
            rule.flush()
        return []

    def check(self, step: int) -> bool:
        for rule in self.rules:
            if step % rule.check_every == 0:
                rule.check(step)
        return False
