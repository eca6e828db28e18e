"""What a run or an estimate reads from the layers, on the main thread.

The image is *not* copied: the request holds the layer's array (or a view of the plane shown;
a lazy, dask layer stays lazy) and the pipeline reads its parts and tiles in the worker. If the
layer's data is replaced meanwhile, the run goes on with the array it started with. The mask is
copied here, since Labels are painted in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .layers import Plane, current_plane, layer_axes, output_transform, stack_transform
from .progress import noun

if TYPE_CHECKING:
    import napari
    from napari.layers import Image, Labels

    from ..pipeline.plan import JobPlan
    from .form import Form

__all__ = ["Source", "estimate_args", "layer_geometry", "mask_of", "read_source", "run_params"]


@dataclass(frozen=True, eq=False)
class Source:
    """The image a run restores: the layer, the array handed to the pipeline, the plane (the
    whole layer for a stack run) and, for a stack run, the layer's axes and the mode."""

    layer: Image
    image: Any
    plane: Plane
    axes: str | None = None
    mode: str | None = None

    @property
    def stack(self) -> bool:
        return self.axes is not None

    @property
    def noun(self) -> str:
        return noun(self.axes, self.mode)

    def request_args(self) -> dict[str, Any]:
        """``make_request``'s geometry arguments."""
        if self.stack:
            return {"axes": self.axes, "mode": self.mode}
        return {"channel_axis": -1 if self.layer.rgb else None}


def read_source(viewer: napari.Viewer, form: Form) -> Source:
    """The chosen layer's plane or stack; ``ValueError`` for what cannot be restored."""
    layer = form.image.value
    if layer is None:
        raise ValueError("choose an image layer (open one, or File ▸ Open Sample)")
    if layer.multiscale:
        raise ValueError(f"{layer.name!r} is multiscale, which is not supported yet")
    mode = form.mode.value if layer.ndim > 2 else "current"
    if mode == "current":
        plane = current_plane(layer, viewer)
        return Source(layer, layer.data[plane.index] if plane.sliced_axes else layer.data, plane)
    axes = layer_axes(layer, form.axes.value)
    whole = Plane((layer.ndim - 2, layer.ndim - 1), (None,) * layer.ndim)
    return Source(layer, layer.data, whole, axes, mode)


def mask_of(source: Source, mask_layer: Labels | None) -> np.ndarray:
    """A copy of the mask for ``source`` (its plane, or the whole stack); ``ValueError`` when
    there is none, it does not fit or nothing is painted."""
    if mask_layer is None:
        raise ValueError(
            "choose a mask: add a Labels layer (the 'new labels layer' button), paint the "
            "missing pixels and pick it as 'mask'"
        )
    if mask_layer.multiscale:
        raise ValueError(f"mask {mask_layer.name!r} is multiscale, which is not supported")
    layer = source.layer
    spatial = layer.data.shape[: layer.ndim]
    data = mask_layer.data
    if mask_layer.ndim == layer.ndim and data.shape == spatial:
        mask = np.array(data[source.plane.index], copy=True)
    elif mask_layer.ndim == 2 and data.shape == spatial[-2:]:
        mask = np.array(data, copy=True)
    else:
        raise ValueError(
            f"mask {mask_layer.name!r} has shape {data.shape} but image {layer.name!r} has "
            f"shape {spatial}: they must match (or the mask be one {spatial[-2:]} plane)"
        )
    if not mask.any():
        raise ValueError(
            f"mask {mask_layer.name!r} is empty: paint the missing pixels (any label > 0)"
        )
    return mask


def layer_geometry(source: Source, factor: int) -> dict[str, Any]:
    """The result layer's keyword arguments: the input's geometry (super-resolution placed
    exactly on it), units, axis labels and colour."""
    layer = source.layer
    if source.stack:
        assert source.axes is not None
        dims = source.axes[:-1] if layer.rgb else source.axes
        scale, translate = stack_transform(layer.scale, layer.translate, dims, factor)
    else:
        scale, translate = output_transform(layer.scale, layer.translate, source.plane, factor)
    kwargs: dict[str, Any] = {
        "scale": scale,
        "translate": translate,
        "units": layer.units,
        "axis_labels": layer.axis_labels,
        "rgb": layer.rgb,
    }
    if not layer.rgb:
        kwargs["colormap"] = layer.colormap
    return kwargs


def run_params(plan: JobPlan, source: Source, quality: str) -> dict[str, Any]:
    """The run's parameters as resolved by the plan, for the result layer's metadata."""
    request, o = plan.request, plan.request.options
    params: dict[str, Any] = {
        "task": request.task,
        "source": source.layer.name,
        "quality": quality,
        "preset": o.preset if isinstance(o.preset, str) else plan.preset.name,
        "steps": plan.settings.steps,
        "stop": o.stop if isinstance(o.stop, str) else type(o.stop).__name__,
        "update_every": o.update_every,
        "seed": o.seed,
        "device": str(plan.device),
        "precision": o.precision,
        "lr": plan.settings.lr,
        "perturb_std": plan.perturb_std,
        "tv_weight": o.tv_weight,
        "noise": o.noise,
        "tile": None if plan.tiles is None else plan.tiles.tile,
        "workers": plan.workers,
        "ensemble": plan.members,
        "uncertainty": o.uncertainty,
        "fuse": o.fuse,
    }
    if request.factor > 1:
        params["factor"] = request.factor
    for name in ("sigma", "gain", "offset", "read_noise"):
        if getattr(o, name) is not None:
            params[name] = getattr(o, name)
    if source.stack:
        params |= {"axes": source.axes, "mode": source.mode}
    elif source.plane.sliced_axes:
        params["slice"] = source.plane.position
    return params


def estimate_args(plan: JobPlan, options: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
    """``estimate_time``'s arguments for one 2D fit of ``plan`` (the image or plane, or a
    slice of the stack) and how many such fits the run makes; None for a 3D volume, which
    cannot be timed."""
    request = plan.request
    if request.stack is not None:
        if request.stack.mode == "volume":
            return None, 1
        h, w, c = (request.stack.size(a) for a in "YXC")
        slices = request.stack.count
    else:
        shape, axis = tuple(request.image.shape), request.channel_axis
        c, slices = 1, 1
        if axis is not None:
            axis %= len(shape)
            c, shape = shape[axis], shape[:axis] + shape[axis + 1 :]
        h, w = shape
    factor = request.factor if request.factor > 1 else None
    kwargs = {"shape": (h, w), "task": request.task, "factor": factor, "channels": c, **options}
    return kwargs, slices
