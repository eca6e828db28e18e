"""The Deconvolve dock's point-spread function: from an image layer, a file (TIFF, PNG), or a
model (a Gaussian of σ pixels; a widefield microscope from its NA, emission wavelength,
immersion refractive index and pixel size, :func:`napari_dip.psf.widefield_psf`).

Only the controls of the chosen source show. :meth:`PsfControls.read` runs on the main thread
and returns the raw array; the request checks it (:func:`napari_dip.psf.check_psf`), so a bad
PSF is an error notification before any worker starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox, FileEdit, FloatSpinBox
from napari.layers import Image

from ..options import Choice
from .controls import bullets, combo

__all__ = ["PSF_SOURCES", "PsfControls"]

PSF_SOURCES = (
    Choice("layer", "image layer", "a measured PSF (e.g. averaged beads) open as an image layer"),
    Choice("file", "file (TIFF, PNG)", "a measured PSF saved as a TIFF or PNG file"),
    Choice("gaussian", "Gaussian model", "a Gaussian blur of σ pixels"),
    Choice(
        "widefield",
        "widefield model",
        "an aberration-free widefield microscope (Born–Wolf), in focus: from its NA, emission "
        "wavelength, immersion refractive index and the pixel size",
    ),
)
_CENTRE = (
    "The PSF is centred at size // 2 along each axis and normalised to sum 1; its pixels are "
    "the image's."
)


def _spin(label: str, value: float, lo: float, hi: float, step: float, tip: str) -> FloatSpinBox:
    box = FloatSpinBox(label=label, value=value, min=lo, max=hi, step=step)
    box.tooltip = tip
    return box


class PsfControls:
    """The PSF source and the controls of each source; ``widgets`` go on the first screen."""

    def __init__(self, layers_of: Callable[[type], Callable]) -> None:
        self.source = combo(
            "PSF",
            PSF_SOURCES,
            "gaussian",
            "the point-spread function: the blur to undo\n" + bullets(PSF_SOURCES) + "\n" + _CENTRE,
        )
        self.layer = ComboBox(label="PSF layer", choices=layers_of(Image), nullable=True)
        self.layer.tooltip = "the image layer holding the PSF (2D; 3D for a volume). " + _CENTRE
        self.file = FileEdit(label="PSF file", mode="r", filter="Images (*.tif *.tiff *.png)")
        self.file.tooltip = "a TIFF or PNG file holding the PSF. " + _CENTRE
        self.sigma = _spin("σ (pixels)", 1.5, 0.1, 50.0, 0.1, "the Gaussian's standard deviation")
        self.na = _spin("NA", 1.4, 0.05, 1.7, 0.05, "the objective's numerical aperture")
        self.wavelength = _spin(
            "emission λ (µm)", 0.52, 0.2, 2.0, 0.01, "the emission wavelength, in µm"
        )
        self.refractive_index = _spin(
            "refractive index", 1.515, 1.0, 2.0, 0.001, "of the immersion medium (oil 1.515)"
        )
        self.refractive_index.native.setDecimals(3)
        self.pixel_size = _spin(
            "pixel size (µm)",
            0.065,
            0.001,
            10.0,
            0.001,
            "the image's pixel size in µm (taken from the layer's scale when its units are "
            "lengths)",
        )
        self.pixel_size.native.setDecimals(3)
        self._by_source: dict[str, list[Any]] = {
            "layer": [self.layer],
            "file": [self.file],
            "gaussian": [self.sigma],
            "widefield": [self.na, self.wavelength, self.refractive_index, self.pixel_size],
        }
        self.widgets = [self.source, *(w for ws in self._by_source.values() for w in ws)]
        self.source.changed.connect(self._show)
        self._show()

    def _show(self, *_: Any) -> None:
        for name, widgets in self._by_source.items():
            for widget in widgets:
                widget.visible = name == self.source.value

    def pick_layer(self, layers: Any) -> None:
        """With no PSF layer chosen, take one whose name says it is a PSF."""
        if self.layer.value is None:
            named = [layer for layer in layers if "psf" in layer.name.lower()]
            if named and isinstance(named[-1], Image):
                self.layer.value = named[-1]

    def apply_layer_hints(self, layer: Any) -> None:
        """The pixel size from the image layer's scale, when its units are lengths."""
        if layer is None:
            return
        try:
            size = (float(layer.scale[-1]) * layer.units[-1]).to("micrometer").magnitude
        except Exception:  # pixels, or no units: keep what is there
            return
        if np.isfinite(size) and size > 0:
            self.pixel_size.value = float(size)

    def read(self, image: Any = None) -> np.ndarray:
        """The PSF as an array (main thread); ``ValueError`` saying what to choose."""
        source = self.source.value
        if source == "layer":
            layer = self.layer.value
            if layer is None:
                raise ValueError(
                    "choose the PSF layer (open the PSF as an image), or a PSF model or file"
                )
            if layer is image:
                raise ValueError(f"the PSF layer is the image {layer.name!r} itself")
            if layer.multiscale or layer.rgb:
                what = "multiscale" if layer.multiscale else "RGB"
                raise ValueError(f"PSF layer {layer.name!r} is {what}: a PSF is one plain array")
            return np.array(layer.data, copy=True)
        if source == "file":
            return self._read_file()
        from .. import psf

        if source == "gaussian":
            return psf.gaussian_psf(float(self.sigma.value))
        try:
            return psf.widefield_psf(
                float(self.na.value),
                float(self.wavelength.value),
                float(self.refractive_index.value),
                float(self.pixel_size.value),
            )
        except ValueError as err:
            raise ValueError(f"the widefield PSF: {err}") from None

    def _read_file(self) -> np.ndarray:
        from ..io import ImageFileError, read_image

        text = str(self.file.value or "").strip()
        path = Path(text)
        if not text or text == "." or path.is_dir():
            raise ValueError("choose the PSF file (a TIFF or PNG)")
        try:
            return read_image(path)
        except ImageFileError as err:
            raise ValueError(f"the PSF file: {err}") from None

    def describe(self) -> dict[str, Any]:
        """The PSF's source for the result layer's metadata."""
        source = self.source.value
        if source == "layer":
            layer = self.layer.value
            return {"source": "layer", "layer": None if layer is None else layer.name}
        if source == "file":
            return {"source": "file", "file": str(self.file.value)}
        if source == "gaussian":
            return {"source": "gaussian", "sigma_px": float(self.sigma.value)}
        return {
            "source": "widefield",
            "na": float(self.na.value),
            "wavelength_um": float(self.wavelength.value),
            "refractive_index": float(self.refractive_index.value),
            "pixel_size_um": float(self.pixel_size.value),
        }
