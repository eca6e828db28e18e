"""A run's result layer, on the main thread: made on the first update, then updated in place.

Every run gets a layer of its own (a free name: earlier results stay), with the input's
geometry (super-resolution placed exactly on it), its parameters, step, stop reason and
chosen step in the metadata. A stack run writes each part as it comes and the whole stack at
the end. A failed or stopped run keeps the best result so far. *Keep every update* adds, at
the end, a hidden layer with one plane per update.
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

__all__ = ["ResultLayer", "set_contrast"]


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
            }
            | _camera(snap)
        )

    def _alive(self) -> bool:
        return self.layer is not None and self.layer in self._viewer.layers

    def show(self, update: Update) -> None:
        """Put an update in the layer (made on the first update that has an image)."""
        snap, data = update.snap, update.data
        self.last = snap
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

    def finish(self) -> Image | None:
        """The end of the run: the history layer, if asked for (hidden, one plane per
        update, the layer's metadata and ``history_steps``)."""
        if not (self.keep_history and self.history and self._alive()):
            return None
        assert self.layer is not None
        kwargs = dict(self.layer_kwargs)
        kwargs["scale"] = [1.0, *kwargs["scale"]]
        kwargs["translate"] = [0.0, *kwargs["translate"]]
        kwargs["units"] = ["pixel", *kwargs["units"]]
        kwargs["axis_labels"] = ["update", *kwargs["axis_labels"]]
        base = self.layer.name
        name = f"{base[:-1]} steps]" if base.endswith("]") else f"{base} steps"
        metadata = dict(self.layer.metadata) | {"history_steps": list(self.history_steps)}
        stack = self._viewer.add_image(
            np.stack(self.history),
            name=unique_name(name, [layer.name for layer in self._viewer.layers]),
            metadata=metadata,
            visible=False,
            **kwargs,
        )
        set_contrast(stack, stack.data)
        return stack
