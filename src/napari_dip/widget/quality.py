"""The first screen's quality ↔ speed choice: three named settings of preset, stop rule and
step budget, and which of them a form's settings are (else "custom").

Picked from what the presets are (``engine/presets.py``, README "Presets and method"):

- **fast** — the light ``fast`` network with the automatic stop, and at most the preset's own
  step count (1000 to denoise, 2000 to inpaint or upscale) instead of three times that: a run
  the stop rule has not ended by then ends there, with the best estimate so far.
- **balanced** (default) — the library's default: ``fast``, the automatic stop, three times the
  preset's steps as a ceiling (room for a late peak). On a CPU it matched the published
  network's denoising quality (28.32 against 28.36 dB) about 60× sooner.
- **best** — the published ``paper`` network (2.2 M parameters, 15–60× the cost of a ``fast``
  step), automatic stop, three times its steps as a ceiling: for a GPU, or to reproduce the
  paper; on denoising it measured no better than *balanced*.

Pure Python; the step counts need the engine's presets (torch), imported when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..options import Choice

__all__ = [
    "CUSTOM",
    "DEFAULT",
    "QUALITIES",
    "Quality",
    "preset_task",
    "quality_of",
    "quality_steps",
]


@dataclass(frozen=True)
class Quality:
    """A named setting: ``preset`` and ``stop`` rule, and the step ceiling as the preset's
    step count (``full_budget`` False) or the default ceiling for ``stop`` (True)."""

    name: str
    label: str
    help: str
    preset: str
    stop: str
    full_budget: bool

    @property
    def choice(self) -> Choice:
        return Choice(self.name, self.label, self.help)


QUALITIES: tuple[Quality, ...] = (
    Quality(
        "fast",
        "fast",
        "a quick look: the light 'fast' network, stopped automatically, at most the preset's "
        "step count (1000 steps to denoise, 2000 to inpaint or upscale)",
        "fast",
        "auto",
        False,
    ),
    Quality(
        "balanced",
        "balanced",
        "the default: the 'fast' network, stopped automatically, with room for a late peak "
        "(three times the preset's steps at most); on a CPU it matched the published "
        "network's denoising quality about 60× sooner",
        "fast",
        "auto",
        True,
    ),
    Quality(
        "best",
        "best (slow on a CPU)",
        "the published 'paper' network (2.2 M parameters, 15–60× the cost per step), stopped "
        "automatically: for a GPU or to reproduce the paper; on denoising it measured no "
        "better than 'balanced'",
        "paper",
        "auto",
        True,
    ),
)
CUSTOM = Choice(
    "custom", "custom (see Advanced)", "the preset, stop rule or steps set under Advanced"
)
DEFAULT = "balanced"


def preset_task(preset: Any, task: str) -> Any:
    """A preset's settings for ``task`` as the plan fits it: deconvolution like denoising
    unless the preset has its own."""
    return preset.task(task if task in preset.tasks else "denoise")


def quality_steps(quality: Quality, task: str) -> int:
    """The step budget ``quality`` gives ``task``."""
    from ..engine import get_preset
    from ..pipeline.plan import default_steps

    if quality.full_budget:
        return default_steps(quality.preset, task, quality.stop)
    return preset_task(get_preset(quality.preset), task).steps


def quality_of(preset: str, stop: str, steps: int, task: str) -> str:
    """The name of the quality these settings are, or ``"custom"``."""
    for quality in QUALITIES:
        if (quality.preset, quality.stop) == (preset, stop) and steps == quality_steps(
            quality, task
        ):
            return quality.name
    return CUSTOM.name
