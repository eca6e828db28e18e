"""The form of a dock: controls built from :mod:`napari_dip.options` and read into a request.

The first screen holds what most runs need: the image layer, the task's own inputs (a mask
layer, a factor), the quality ↔ speed choice (:mod:`.quality`) and the noise model. Everything
else folds under *Advanced*; its tooltips are the option's help text from
:data:`~napari_dip.options.OPTIONS` and a line on when to change it. The stack controls show
only for a layer with more than two dimensions. Built when a dock is created (the preset and
device lists need torch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, LineEdit, SpinBox
from magicgui.widgets import Widget as MagicWidget
from napari.layers import Image
from superqt import QCollapsible

from ..options import MODES, NOISES, PRECISIONS, STOPS, Choice
from .controls import (
    auto_int,
    bullets,
    camera_controls,
    combo,
    ensemble_controls,
    fuse_control,
    label_of,
    option,
    tooltip_of,
)
from .quality import CUSTOM, DEFAULT, QUALITIES, preset_task, quality_of, quality_steps

__all__ = ["STACK_CHOICES", "Form"]

STACK_CHOICES = (
    Choice("current", "current slice", "the plane the viewer shows, as a 2D image"),
    *MODES,
)
_DEVICE_LABELS = {"auto": "auto (best available)", "cpu": "CPU", "mps": "Apple MPS"}
UPDATE_EVERY = 25  # the widget's default: a live view (the API's is 100)


class Form:
    """The controls of one dock; ``task_widgets`` (mask, factor) go after the image,
    ``task_advanced`` at the top of Advanced."""

    def __init__(
        self,
        layers_of: Callable[[type], Callable],
        task: str,
        task_widgets: list[MagicWidget],
        task_advanced: tuple[MagicWidget, ...] | list[MagicWidget] = (),
    ) -> None:
        from ..engine import PRESETS, get_preset
        from ..engine.device import available_devices

        self.task = task
        self._get_preset = get_preset
        self._syncing = False
        self._preset_defaults: dict[str, float] = {}
        self.image = ComboBox(label="image", choices=layers_of(Image))
        self.image.tooltip = "the image layer to restore (it is never modified)"
        self.stack_note = Label(value="")
        self.quality = combo(
            "quality",
            (*(q.choice for q in QUALITIES), CUSTOM),
            DEFAULT,
            "quality ↔ speed:\n" + "\n".join(f"• {q.label}: {q.help}" for q in QUALITIES),
        )
        self.noise = combo("noise model", NOISES, "auto", tooltip_of("noise"))
        self.first = Container(
            widgets=[self.image, self.stack_note, *task_widgets, self.quality, self.noise]
        )

        self.mode = combo(
            "restore",
            STACK_CHOICES,
            "current",
            "what of a stack or time-lapse to restore:\n"
            + bullets(STACK_CHOICES)
            + "\nWhen to change it: to restore the whole stack once one slice looks right.",
        )
        self.axes = LineEdit(label="axes", value="")
        self.axes.tooltip = (
            "what each axis of the layer is, one letter each from T (time), Z (depth), C "
            "(channels), Y, X, e.g. TZYX; blank: the guess shown in grey, from the layer's "
            "axis labels and RGB flag.\nWhen to change it: when that guess is wrong."
        )
        preset_help = "\n".join(f"• {n}: {p.description}" for n, p in PRESETS.items())
        self.preset = ComboBox(label=label_of("preset"), choices=list(PRESETS), value="fast")
        self.preset.tooltip = tooltip_of("preset") + "\n" + preset_help
        denoise_only = ("discrepancy", "sure")  # the request refuses them for other tasks
        stops = tuple(c for c in STOPS if task == "denoise" or c.name not in denoise_only)
        self.stop = combo(label_of("stop"), stops, "auto", tooltip_of("stop", stops))
        self.steps = option("steps", SpinBox, min=1, max=1_000_000, step=50)
        self.update_every = option("update_every", SpinBox, value=UPDATE_EVERY, min=1, max=10**5)
        self.seed = option("seed", SpinBox, value=0, min=0, max=2**31 - 1)
        devices = ["auto", *available_devices()]
        self.device = option(
            "device",
            ComboBox,
            choices=[(_DEVICE_LABELS.get(d, d.upper().replace(":", " ")), d) for d in devices],
        )
        self.precision = combo(label_of("precision"), PRECISIONS, "auto", tooltip_of("precision"))
        self.lr = option("lr", FloatSpinBox, min=1e-5, max=1.0, step=1e-4)
        self.perturb_std = option("perturb_std", FloatSpinBox, min=0.0, max=1.0, step=1e-4)
        self.tv_weight = option("tv_weight", FloatSpinBox, value=0.0, min=0.0, max=10.0, step=1e-4)
        self.tile = option("tile", LineEdit, value="auto")  # auto, none or a side
        self.workers = option("workers", LineEdit, value="auto")  # auto or a count
        self.warm_start = CheckBox(text=label_of("warm_start"), value=True)
        self.warm_start.tooltip = tooltip_of("warm_start")
        self.sigma = option("sigma", FloatSpinBox, value=0.0, min=0.0, max=1e9, step=0.1)
        self.estimate_camera, self.gain, self.offset, self.read_noise = camera_controls()
        self.uncertainty, self.ensemble = ensemble_controls()
        self.fuse = fuse_control(task)
        self.fuse.visible = task in ("denoise", "inpaint")
        self.keep_history = CheckBox(text="keep every update as a stack layer")
        self.keep_history.tooltip = (
            "after the run, add a hidden layer with one plane per update, to scrub through "
            "the run (a single image or plane only).\nWhen to change it: to see how the "
            "result grew, or where it began to fit the noise."
        )
        self.advanced_box = Container(
            widgets=[
                *task_advanced,
                self.mode,
                self.axes,
                self.preset,
                self.stop,
                self.fuse,
                self.steps,
                self.update_every,
                self.seed,
                self.device,
                self.precision,
                self.lr,
                self.perturb_std,
                self.tv_weight,
                self.tile,
                self.workers,
                self.warm_start,
                self.sigma,
                self.estimate_camera,
                self.gain,
                self.offset,
                self.read_noise,
                self.uncertainty,
                self.ensemble,
                self.keep_history,
            ]
        )
        self.advanced = QCollapsible("Advanced")
        self.advanced.addWidget(self.advanced_box.native)
        self.advanced.collapse(animate=False)

        self.quality.changed.connect(self._quality_changed)
        self.preset.changed.connect(self._budget_changed)
        self.stop.changed.connect(self._budget_changed)
        self.steps.changed.connect(self._match_quality)
        self.image.changed.connect(self._image_changed)
        self.mode.changed.connect(lambda *_: self.show_stack(self.image.value))
        self.noise.changed.connect(self._camera_enabled)
        self.stop.changed.connect(self._fuse_enabled)
        self.estimate_camera.changed.connect(self._camera_enabled)
        self._quality_changed()
        self._camera_enabled()
        self._fuse_enabled()
        self.show_stack(None)

    # --- state --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _sync(self) -> Iterator[None]:
        self._syncing, before = True, self._syncing
        try:
            yield
        finally:
            self._syncing = before

    def _quality_changed(self, *_: Any) -> None:
        """A quality sets the preset, stop rule and steps under Advanced; custom keeps them."""
        chosen = {q.name: q for q in QUALITIES}.get(self.quality.value)
        if self._syncing or chosen is None:
            return
        with self._sync():
            self.preset.value, self.stop.value = chosen.preset, chosen.stop
            self.steps.value = quality_steps(chosen, self.task)
            self._preset_values()

    def _budget_changed(self, *_: Any) -> None:
        """A preset or stop rule changed by hand: its default steps, lr and input noise."""
        if self._syncing:
            return
        from ..pipeline.plan import default_steps

        with self._sync():
            self.steps.value = default_steps(self.preset.value, self.task, self.stop.value)
            self._preset_values()
        self._match_quality()

    def _match_quality(self, *_: Any) -> None:
        if self._syncing:
            return
        with self._sync():
            self.quality.value = quality_of(
                self.preset.value, self.stop.value, int(self.steps.value), self.task
            )

    def _preset_values(self) -> None:
        """Show the preset's lr and input noise; a box left at what it shows passes None (the
        preset's exact value: the boxes round 1/30 to 0.0333)."""
        preset = self._get_preset(self.preset.value)
        perturb = preset_task(preset, self.task).perturb_std
        for name, exact in (("lr", preset.lr), ("perturb_std", perturb)):
            box = getattr(self, name)
            box.value = exact
            self._preset_defaults[name] = float(box.value)

    def _camera_enabled(self, *_: Any) -> None:
        photons = self.noise.value != "gaussian"
        given = photons and not self.estimate_camera.value
        self.sigma.enabled = self.noise.value == "gaussian"
        self.estimate_camera.enabled = photons
        self.gain.enabled = self.offset.enabled = given
        self.read_noise.enabled = given and self.noise.value == "poisson-gaussian"

    def _fuse_enabled(self, *_: Any) -> None:
        """Fusion weighs by SURE (denoising) or by the pixels self-validation holds out
        (inpainting): it needs that stop (and keeps its choice while off)."""
        needs = ("sure",) if self.task == "denoise" else ("auto", "validation")
        self.fuse.enabled = self.stop.value in needs

    def _image_changed(self, layer: Any) -> None:
        self.show_stack(layer)
        self.apply_layer_hints(layer)

    def show_stack(self, layer: Any) -> None:
        """The stack controls (and a note on the first screen) only for a > 2D layer."""
        stack = layer is not None and layer.ndim > 2
        self.mode.visible = self.axes.visible = self.stack_note.visible = stack
        self.warm_start.visible = stack
        if stack:
            from .layers import layer_axes

            try:
                guess = layer_axes(layer)
            except ValueError:
                guess = "e.g. TZYX"
            self.axes.native.setPlaceholderText(guess)
            what = {c.name: c.label for c in STACK_CHOICES}[self.mode.value]
            self.stack_note.value = f"{layer.ndim}D layer: restores the {what} (Advanced ▸ restore)"

    def apply_layer_hints(self, layer: Any) -> None:
        """A layer that says its noise model or camera in its metadata (the photon-limited
        sample does) sets them."""
        meta = getattr(layer, "metadata", None) or {}
        if meta.get("noise") in {c.name for c in NOISES}:
            self.noise.value = meta["noise"]
        if "gain" in meta and "offset" in meta:
            self.estimate_camera.value = False
            self.gain.value, self.offset.value = float(meta["gain"]), float(meta["offset"])

    # --- reading ------------------------------------------------------------------------------

    def _preset_value(self, name: str) -> float | None:
        value = float(getattr(self, name).value)
        return None if value == self._preset_defaults.get(name) else value

    def run_options(self) -> dict[str, Any]:
        """The run options for ``make_request``, as the form says them."""
        options: dict[str, Any] = {
            "preset": self.preset.value,
            "steps": int(self.steps.value),
            "stop": self.stop.value,
            "seed": int(self.seed.value),
            "device": self.device.value,
            "precision": self.precision.value,
            "update_every": int(self.update_every.value),
            "lr": self._preset_value("lr"),
            "perturb_std": self._preset_value("perturb_std"),
            "tv_weight": float(self.tv_weight.value),
            "noise": self.noise.value,
            "tile": auto_int("tile", self.tile.value, none=True),
            "workers": auto_int("workers", self.workers.value),
            "ensemble": int(self.ensemble.value),
            "uncertainty": bool(self.uncertainty.value),
            "warm_start": bool(self.warm_start.value),
        }
        if self.task in ("denoise", "inpaint") and self.fuse.enabled:
            options["fuse"] = self.fuse.value
        if self.noise.value == "gaussian" and float(self.sigma.value) > 0:
            options["sigma"] = float(self.sigma.value)
        if self.noise.value != "gaussian" and not self.estimate_camera.value:
            options["gain"] = float(self.gain.value)
            options["offset"] = float(self.offset.value)
            if self.noise.value == "poisson-gaussian":
                options["read_noise"] = float(self.read_noise.value)
        return options

    # --- the dock's hooks ---------------------------------------------------------------------

    def reset_choices(self) -> None:
        self.first.reset_choices()
        self.advanced_box.reset_choices()

    def set_enabled(self, enabled: bool) -> None:
        self.first.enabled = self.advanced_box.enabled = enabled

    def connect_changed(self, callback: Callable[..., Any]) -> None:
        self.first.changed.connect(callback)
        self.advanced_box.changed.connect(callback)
