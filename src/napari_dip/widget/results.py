"""A run's result layer, on the main thread: made on the first update, then updated in place.

Every run gets a layer of its own (a free name: earlier results stay), with the input's
geometry (super-resolution placed exactly on it), its parameters, step, stop reason and
chosen step (and the estimated PSNR, when the stop rule gives one) in the metadata. A stack
run writes each part as it comes and the whole stack at the end. A failed or stopped run keeps
the best result so far. At the end, *keep every update* adds a hidden layer with one plane per
update, and *uncertainty map* a layer ``NAME [… σ]``: the ensemble members' standard
deviation, float32 in the input's units, with the result's geometry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .layers import Plane, place, unique_name
from .progress import STOPPED

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from ..pipeline.snapshot import Snapshot
    from .worker import Update

__all__ = ["SIGMA_COLORMAP", "SIGMA_MEANING", "ResultLayer", "set_contrast", "suffixed"]

SIGMA_COLORMAP = "magma"
SIGMA_MEANING = (
    "uncertainty: the per-pixel standard deviation of the ensemble's members around the "
    "result, in the input's intensity units (not an error bound: members share the model's "
    "bias)"
)


def set_contrast(layer: Image, data: np.ndarray) -> None:
    """napari 0.9 no longer adjusts the contrast by itself: follow the result's range."""
    if layer.rgb or data.size == 0:
        return
    lo, hi = float(np.min(data)), float(np.max(data))
    if not hi > lo:
        hi = lo + 1.0
    low, high = layer.contrast_limits_range
    layer.contrast_limits_range = (min(lo, low), max(hi, high))
    layer.contrast_limits = (lo, hi)


def _camera(snap: Snapshot) -> dict[str, Any]:
    """The camera gain, offset and read noise a Poisson model used (given or estimated)."""
    if snap.camera is None:
        return {}
    names = ("gain", "offset", "read_noise")
    return {"camera": {k: float(getattr(snap.camera, k)) for k in names}}


def suffixed(name: str, word: str) -> str:
    """``img [denoised]`` → ``img [denoised σ]``: a layer named after the result."""
    return f"{name[:-1]} {word}]" if name.endswith("]") else f"{name} {word}"


class ResultLayer:
    """The layer of one run, ``name`` (made unique when it is added)."""

    def __init__(
        self,
        viewer: napari.Viewer,
        name: str,
        plane: Plane,
        layer_kwargs: dict[str, Any],
        params: dict[str, Any],
        keep_history: bool,
    ) -> None:
        self._viewer = viewer
        self.name = name
        self.plane = plane
        self.layer_kwargs = layer_kwargs
        self.params = params
        self.keep_history = keep_history
        self.layer: Image | None = None
        self.history: list[np.ndarray] = []
        self.history_steps: list[int] = []
        self.last: Snapshot | None = None
        self.sigma: np.ndarray | None = None
        self.sigma_layer: Image | None = None
        self.missing_uncertainty = ""  # why an uncertainty map asked for did not come

    def metadata(self, snap: Snapshot) -> dict[str, Any]:
        where: dict[str, Any] = {}
        if snap.parts > 1 or self.params.get("axes"):
            where = {
                "part": snap.part,
                "parts": snap.parts,
                "part_stop_reasons": list(snap.reasons),
            }
        if snap.tiles > 1:
            where["tiles"] = snap.tiles
        return (
            self.params
            | where
            | {
                "step": snap.step,
                "loss": snap.loss,
                "elapsed_s": snap.elapsed,
                "stop_reason": snap.stop_reason,
                "stopped": snap.stop_reason == STOPPED,
                "best_step": snap.best_step,
                "score": snap.score,
                "failures": list(snap.failures),
                "estimated_psnr": snap.estimated_psnr,
                "estimated_psnr_range": snap.estimated_psnr_range,
                "fusion_weight": snap.fusion_weight,
            }
            | _camera(snap)
        )

    def _alive(self) -> bool:
        return self.layer is not None and self.layer in self._viewer.layers

    def show(self, update: Update) -> None:
        """Put an update in the layer (made on the first update that has an image)."""
        snap, data = update.snap, update.data
        self.last = snap
        if update.sigma is not None:
            self.sigma = place(update.sigma, self.plane)
        if data is None:
            if self._alive():
                self.layer.metadata = self.metadata(snap)  # type: ignore[union-attr]
            return
        if update.where is not None:  # a stack's part, written in place
            if self._alive():
                assert self.layer is not None
                self.layer.data[update.where] = data
                self.layer.refresh()
                self.layer.metadata = self.metadata(snap)
            return
        data = place(data, self.plane)
        if not self._alive():
            taken = [layer.name for layer in self._viewer.layers]
            self.layer = self._viewer.add_image(
                data,
                name=unique_name(self.name, taken),
                metadata=self.metadata(snap),
                **self.layer_kwargs,
            )
        else:
            assert self.layer is not None
            self.layer.data = data
            self.layer.metadata = self.metadata(snap)
        set_contrast(self.layer, data)
        if self.keep_history:
            self.history.append(data)
            self.history_steps.append(snap.step)

    def fail(self, message: str) -> None:
        """A failed run keeps what it showed; the metadata says why it ended."""
        if self._alive():
            assert self.layer is not None
            self.layer.metadata = self.layer.metadata | {"stop_reason": f"failed: {message}"}

    def finish(self) -> None:
        """The end of the run: the history layer and the uncertainty map, if asked for."""
        if not self._alive():  # removed meanwhile: nothing to add beside it
            return
        if self.keep_history and self.history:
            self._add_history()
        if self.params.get("uncertainty"):
            self._add_sigma()

    def _taken(self) -> list[str]:
        return [layer.name for layer in self._viewer.layers]

    def _add_history(self) -> None:
        """A hidden layer, one plane per update, the layer's metadata and ``history_steps``."""
        assert self.layer is not None
        kwargs = dict(self.layer_kwargs)
        kwargs["scale"] = [1.0, *kwargs["scale"]]
        kwargs["translate"] = [0.0, *kwargs["translate"]]
        kwargs["units"] = ["pixel", *kwargs["units"]]
        kwargs["axis_labels"] = ["update", *kwargs["axis_labels"]]
        metadata = dict(self.layer.metadata) | {"history_steps": list(self.history_steps)}
        stack = self._viewer.add_image(
            np.stack(self.history),
            name=unique_name(suffixed(self.layer.name, "steps"), self._taken()),
            metadata=metadata,
            visible=False,
            **kwargs,
        )
        set_contrast(stack, stack.data)

    def _add_sigma(self) -> None:
        """``NAME [… σ]``: the members' standard deviation over the result, magma."""
        assert self.layer is not None and self.last is not None
        if self.sigma is None:
            ended = "stopped" if self.last.stop_reason == STOPPED else "ended"
            self.missing_uncertainty = (
                f"no uncertainty map for {self.layer.name!r}: the run {ended} before an "
                "ensemble's members all finished"
            )
            self.layer.metadata = self.layer.metadata | {"uncertainty_layer": None}
            return
        kwargs = dict(self.layer_kwargs) | {"rgb": False, "colormap": SIGMA_COLORMAP}
        metadata = self.params | {
            "uncertainty": SIGMA_MEANING,
            "result": self.layer.name,
            "complete": self.last.stop_reason != STOPPED,  # else 0 where no part finished
        }
        if self.layer_kwargs.get("rgb"):
            metadata["colour"] = "root mean square over the colour channels"
        layer = self._viewer.add_image(
            self.sigma,
            name=unique_name(suffixed(self.layer.name, "σ"), self._taken()),
            metadata=metadata,
            **kwargs,
        )
        # 0 to the 99.5th percentile: a few outlying pixels would leave the rest dark
        top = float(np.max(self.sigma)) if self.sigma.size else 0.0
        high = float(np.percentile(self.sigma, 99.5)) if self.sigma.size else 0.0
        layer.contrast_limits_range = (0.0, max(top, 1e-12))
        layer.contrast_limits = (0.0, max(high, 1e-12) if high > 0 else max(top, 1e-12))
        self.sigma_layer = layer
        self.layer.metadata = self.layer.metadata | {"uncertainty_layer": layer.name}
