"""Pure layer geometry: which plane or stack of a layer to restore and where its result goes.

Free of Qt and torch, so it is cheap to import and easy to test. A plane restore works on the
2D plane (greyscale, or RGB with the colour axis last) the viewer shows; its result keeps the
layer's number of dimensions with length 1 along the other axes, translated so it sits exactly
on that slice. A stack restore keeps the layer's geometry, Y and X refined by the factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import napari
    from napari.layers import Layer

__all__ = [
    "Plane",
    "current_plane",
    "layer_axes",
    "output_transform",
    "place",
    "stack_transform",
    "unique_name",
]


@dataclass(frozen=True)
class Plane:
    """The 2D plane of a layer to restore.

    ``axes`` are the two layer axes of the plane; ``position`` holds, for every layer axis, the
    data index of the slice (``None`` along the plane's axes).
    """

    axes: tuple[int, int]
    position: tuple[int | None, ...]

    @property
    def index(self) -> tuple[int | slice, ...]:
        """Index into the layer's data that extracts the plane (a colour axis stays last)."""
        return tuple(slice(None) if p is None else p for p in self.position)

    @property
    def sliced_axes(self) -> tuple[int, ...]:
        return tuple(i for i, p in enumerate(self.position) if p is not None)


def current_plane(layer: Layer, viewer: napari.Viewer) -> Plane:
    """The plane of ``layer`` that ``viewer`` displays (the whole layer when it is 2D).

    Raises ``ValueError`` when the viewer shows 3D or the displayed axes are not the layer's,
    or the current position lies outside the layer.
    """
    ndim = layer.ndim
    if ndim == 2:
        return Plane((0, 1), (None, None))
    if viewer.dims.ndisplay != 2:
        raise ValueError(
            f"{layer.name!r} has {ndim} dimensions and the viewer shows 3D: switch to 2D view "
            "to restore the displayed plane"
        )
    offset = viewer.dims.ndim - ndim  # layers are aligned to the viewer's last axes
    axes = sorted(int(a) - offset for a in viewer.dims.displayed)
    if len(axes) != 2 or axes[0] < 0:
        raise ValueError(f"the displayed axes are not axes of {layer.name!r}")
    shape = layer.data.shape[:ndim]
    point = layer.world_to_data(viewer.dims.point)
    position: list[int | None] = []
    for axis in range(ndim):
        if axis in axes:
            position.append(None)
            continue
        index = round(float(point[axis]))
        if not 0 <= index < shape[axis]:
            raise ValueError(
                f"the current position is outside {layer.name!r} along axis {axis}: "
                "move the slider onto the layer"
            )
        position.append(index)
    return Plane((axes[0], axes[1]), tuple(position))


def output_transform(
    scale: Sequence[float], translate: Sequence[float], plane: Plane, factor: int = 1
) -> tuple[list[float], list[float]]:
    """Scale and translate for a result computed on ``plane`` and upscaled by ``factor``.

    Along the plane, napari centres pixel ``i`` at ``translate + i·scale``; a ``factor``×
    finer grid whose pixel blocks cover the same area has ``scale/factor`` and is shifted by
    ``-scale·(factor-1)/(2·factor)``. Along sliced axes the result has length 1 and moves to
    the slice's position.
    """
    scale_out = [float(s) for s in scale]
    translate_out = [float(t) for t in translate]
    for axis, index in enumerate(plane.position):
        if index is not None:
            translate_out[axis] += scale_out[axis] * index
        elif factor > 1:
            translate_out[axis] -= scale_out[axis] * (factor - 1) / (2 * factor)
            scale_out[axis] /= factor
    return scale_out, translate_out


def layer_axes(layer: Layer, override: str = "") -> str:
    """Axes letters (``TZCYX``) of ``layer.data``: ``override`` when given, else guessed from
    the layer's ``rgb`` flag and ``axis_labels`` (see :func:`napari_dip._axes.axes_from_labels`).
    """
    from .._axes import axes_from_labels, check_axes

    ndim = len(layer.data.shape)
    if override.strip():
        return check_axes(override.strip(), layer.data.shape)
    return axes_from_labels(tuple(layer.axis_labels), ndim, rgb=bool(layer.rgb))


def stack_transform(
    scale: Sequence[float], translate: Sequence[float], axes: str, factor: int = 1
) -> tuple[list[float], list[float]]:
    """Scale and translate for a whole-stack result: unchanged, except that super-resolution
    makes the ``Y`` and ``X`` pixels ``factor`` times smaller, centred as in
    :func:`output_transform`. ``axes`` names the layer's dimensions (an RGB axis left out)."""
    scale_out = [float(s) for s in scale]
    translate_out = [float(t) for t in translate]
    for axis, letter in enumerate(axes):
        if letter in "YX" and factor > 1:
            translate_out[axis] -= scale_out[axis] * (factor - 1) / (2 * factor)
            scale_out[axis] /= factor
    return scale_out, translate_out


def place(result: np.ndarray, plane: Plane) -> np.ndarray:
    """Give a 2D (or 2D + colour) result length-1 axes where the plane was sliced."""
    return np.expand_dims(result, plane.sliced_axes) if plane.sliced_axes else result


def unique_name(base: str, existing: Sequence[str]) -> str:
    """``base`` if free, else ``base`` with the first free number: earlier results stay."""
    taken = set(existing)
    if base not in taken:
        return base
    stem, bracket = (base[:-1], "]") if base.endswith("]") else (base, "")
    number = 2
    while f"{stem} {number}{bracket}" in taken:
        number += 1
    return f"{stem} {number}{bracket}"
