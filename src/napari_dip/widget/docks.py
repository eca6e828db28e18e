"""The dock widgets, one per task and each with its own menu entry: thin subclasses of
:class:`~.base.RestoreWidget` that add the task's inputs, result name and defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, SpinBox
from magicgui.widgets import Widget as MagicWidget
from napari.layers import Labels

from .base import RestoreWidget
from .inputs import Source, mask_of
from .psf_inputs import PsfControls

if TYPE_CHECKING:
    import napari

    from ..pipeline.plan import JobPlan

__all__ = [
    "DeconvolveWidget",
    "DenoiseWidget",
    "InpaintWidget",
    "RestoreWidget",
    "SuperResolveWidget",
]


class DenoiseWidget(RestoreWidget):
    """Remove noise from an image layer."""

    task = "denoise"
    suffix = "denoised"


class InpaintWidget(RestoreWidget):
    """Fill the pixels painted in a Labels layer (any label > 0 = missing)."""

    task = "inpaint"
    suffix = "inpainted"

    def _task_widgets(self) -> list[MagicWidget]:
        self.mask = ComboBox(label="mask", choices=self._layers_of(Labels), nullable=True)
        self.mask.tooltip = "Labels layer: its painted pixels (label > 0) are missing, and filled"
        return [self.mask]

    def reset_choices(self, *_: Any) -> None:
        """Also pick the top-most Labels layer when none is chosen (e.g. one just made)."""
        super().reset_choices()
        labels = [layer for layer in self._viewer.layers if isinstance(layer, Labels)]
        if self.mask.value is None and labels:
            self.mask.value = labels[-1]

    def _task_inputs(self, source: Source) -> dict[str, Any]:
        return {"mask": mask_of(source, self.mask.value)}


class SuperResolveWidget(RestoreWidget):
    """Upscale an image layer; the result lies exactly over the input."""

    task = "super_resolve"
    suffix = "super-resolved"

    def _task_widgets(self) -> list[MagicWidget]:
        self.factor = SpinBox(label="factor", value=4, min=2, max=16)
        self.factor.tooltip = "upscaling factor: the result's pixels are this many times smaller"
        return [self.factor]

    def _task_inputs(self, source: Source) -> dict[str, Any]:
        return {"factor": int(self.factor.value)}


class DeconvolveWidget(RestoreWidget):
    """Undo the blur of a point-spread function (a layer, a file or a model); under Advanced
    optionally also fill a mask's pixels and upscale."""

    task = "deconvolve"
    suffix = "deconvolved"

    def __init__(self, viewer: napari.viewer.Viewer, parent: Any = None) -> None:
        super().__init__(viewer, parent)
        if self.psf.layer.value is not None:  # a layer named PSF is open: start on it
            self.psf.source.value = "layer"
        self.form.image.changed.connect(self.psf.apply_layer_hints)
        self.psf.apply_layer_hints(self.form.image.value)

    def _task_widgets(self) -> list[MagicWidget]:
        self.psf = PsfControls(self._layers_of)
        return self.psf.widgets

    def _task_advanced(self) -> list[MagicWidget]:
        self.mask = ComboBox(label="mask", choices=self._layers_of(Labels), nullable=True)
        self.mask.tooltip = (
            "optional: a Labels layer whose painted pixels (label > 0) are missing; they are "
            "filled while deblurring.\nWhen to change it: dead pixels, saturated spots or "
            "scratches that should not count."
        )
        self.factor = SpinBox(label="factor", value=1, min=1, max=16)
        self.factor.tooltip = (
            "optional upscaling: 1 keeps the pixels; 2 or more also super-resolves (the PSF "
            "stays on the input's pixels).\nWhen to change it: when the blur hides detail "
            "finer than a pixel."
        )
        return [self.mask, self.factor]

    def reset_choices(self, *_: Any) -> None:
        """Also pick a layer whose name says PSF when none is chosen."""
        super().reset_choices()
        self.psf.pick_layer(self._viewer.layers)

    def _task_inputs(self, source: Source) -> dict[str, Any]:
        inputs: dict[str, Any] = {"psf": self.psf.read(source.layer)}
        if self.mask.value is not None:
            inputs["mask"] = mask_of(source, self.mask.value)
        if int(self.factor.value) > 1:
            inputs["factor"] = int(self.factor.value)
        return inputs

    def _task_params(self, plan: JobPlan) -> dict[str, Any]:
        psf = plan.request.psf
        shape = [] if psf is None else [int(n) for n in psf.shape]
        params: dict[str, Any] = {"psf": self.psf.describe() | {"shape": shape}}
        if self.mask.value is not None:
            params["mask"] = self.mask.value.name
        return params
