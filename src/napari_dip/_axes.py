"""Axes of microscopy arrays: which axis is what, and how a stack is cut into network inputs.

An axes string names every axis of an array with one letter: ``T`` (time), ``Z`` (depth),
``C`` (channels, RGB included), ``Y`` and ``X`` (e.g. ``"TZYXC"``, ``"ZCYX"``); ``Y`` and ``X``
are required. A :class:`StackLayout` says which axes are looped over and which go into the network:
``mode="slices"`` restores every ``YX`` plane (with its channels) as a 2D image; ``"volume"``
restores every ``ZYX`` volume with a 3D network. Nothing here imports torch or napari.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["AXES", "MODES", "StackLayout", "axes_from_labels", "check_axes", "stack_layout"]

AXES = "TZCYX"
MODES = ("slices", "volume")
Mode = Literal["slices", "volume"]

# napari axis labels (lower case) and tifffile's axes letters that mean one of ours
_LABELS = {
    "t": "T",
    "time": "T",
    "frame": "T",
    "z": "Z",
    "depth": "Z",
    "plane": "Z",
    "c": "C",
    "ch": "C",
    "channel": "C",
    "channels": "C",
    "s": "C",  # tifffile: samples (RGB)
    "y": "Y",
    "x": "X",
}


def check_axes(axes: object, shape: Sequence[int]) -> str:
    """Validate an axes string against ``shape``; return it in upper case.

    Raises ``TypeError`` for a non-string and ``ValueError`` naming what is wrong otherwise.
    """
    if not isinstance(axes, str):
        raise TypeError(f"axes must be a string such as 'ZYX' or 'TYXC', got {axes!r}")
    letters = axes.upper()
    if len(letters) != len(shape):
        raise ValueError(
            f"axes {axes!r} has {len(letters)} letters but the image has {len(shape)} "
            f"dimensions (shape {tuple(shape)})"
        )
    unknown = sorted(set(letters) - set(AXES))
    if unknown:
        raise ValueError(
            f"axes {axes!r} has unknown letters {', '.join(unknown)}; use T (time), Z (depth), "
            "C (channels), Y and X"
        )
    repeated = sorted({a for a in letters if letters.count(a) > 1})
    if repeated:
        raise ValueError(f"axes {axes!r} names {', '.join(repeated)} more than once")
    if "Y" not in letters or "X" not in letters:
        raise ValueError(f"axes {axes!r} must contain Y and X (the image plane)")
    return letters


def axes_from_labels(labels: Sequence[str] | None, ndim: int, rgb: bool = False) -> str:
    """Axes of a napari layer's data from its ``axis_labels`` and ``rgb`` flag.

    Labels that name axes (``"z"``, ``"time"``, ``"y"`` …) are used when they name every axis
    once; otherwise the last two spatial axes are ``YX``, the colour axis of an RGB layer
    ``C``, and the axes before ``YX`` are taken, from the right, as ``Z``, ``T``, ``C``. The
    widget offers an override for when this guess is wrong.
    """
    spatial = ndim - 1 if rgb else ndim
    if spatial < 2:
        raise ValueError(f"a layer with {ndim} dimensions has no image plane")
    tail = "C" if rgb else ""
    if labels is not None and len(labels) == spatial:
        mapped = "".join(_LABELS.get(str(label).strip().lower(), "?") for label in labels)
        try:
            return check_axes(mapped + tail, (0,) * ndim)
        except ValueError:
            pass
    leading = spatial - 2
    if leading > 3:
        raise ValueError(f"cannot guess the axes of a layer with {ndim} dimensions; give them")
    return "CTZ"[3 - leading :] + "YX" + tail


@dataclass(frozen=True)
class StackLayout:
    """How an array with ``axes`` is cut into network inputs in ``mode``.

    ``loop`` are the axes iterated over (each index gives one network input), ``core`` the
    axes of one input in the caller's order; :meth:`to_engine` reorders a piece to the engine's
    ``(C, [Z,] Y, X)``.
    """

    axes: str
    mode: Mode
    shape: tuple[int, ...]

    @property
    def core_letters(self) -> str:
        kept = "ZCYX" if self.mode == "volume" else "CYX"
        return "".join(a for a in self.axes if a in kept)

    @property
    def loop(self) -> tuple[int, ...]:
        core = self.core_letters
        return tuple(i for i, a in enumerate(self.axes) if a not in core)

    @property
    def count(self) -> int:
        """How many network inputs (slices, frames or volumes)."""
        return int(np.prod([self.shape[i] for i in self.loop], dtype=np.int64))

    def size(self, letter: str) -> int:
        """The length of axis ``letter``; 1 when the array has no such axis (e.g. no C)."""
        return self.shape[self.axes.index(letter)] if letter in self.axes else 1

    @property
    def spatial(self) -> str:
        """The engine's spatial axes: ``"YX"`` or ``"ZYX"``."""
        return "ZYX" if self.mode == "volume" else "YX"

    def indices(self) -> Iterator[tuple[int | slice, ...]]:
        """Index tuples into the full array, one per network input, in C order."""
        loop = self.loop
        for position in np.ndindex(*(self.shape[i] for i in loop)):
            index: list[int | slice] = [slice(None)] * len(self.axes)
            for axis, value in zip(loop, position, strict=True):
                index[axis] = int(value)
            yield tuple(index)

    def to_engine(self, piece: np.ndarray) -> np.ndarray:
        """A piece in the caller's core order -> ``(C, [Z,] Y, X)`` (C = 1 when absent)."""
        core = self.core_letters
        order = ("C" if "C" in core else "") + self.spatial
        moved = np.transpose(piece, [core.index(a) for a in order])
        return moved if "C" in core else moved[None]

    def from_engine(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_engine`."""
        core = self.core_letters
        if "C" not in core:
            values = values[0]
        order = ("C" if "C" in core else "") + self.spatial
        return np.transpose(values, [order.index(a) for a in core])

    def piece_mask(self, mask: np.ndarray, index: tuple) -> np.ndarray:
        """The part of a stack's ``mask`` for the piece at ``index``: the mask has the image's
        shape, its shape without ``C``, or is one ``(Y, X)`` mask for every piece. Raises
        ``ValueError`` naming the shapes that would do; ``TypeError``/``ValueError`` for a mask
        that is not bool, integer or float, or holds NaN."""
        from ._arrays import check_mask_values

        shape, axes = self.shape, self.axes
        no_c = tuple(n for a, n in zip(axes, shape, strict=True) if a != "C")
        yx = tuple(n for a, n in zip(axes, shape, strict=True) if a in "YX")
        if mask.shape == shape:
            return check_mask_values(np.asarray(mask[index]))
        if "C" in axes and mask.shape == no_c:
            part = mask[tuple(i for a, i in zip(axes, index, strict=True) if a != "C")]
            return check_mask_values(np.asarray(part))
        if mask.shape == yx:
            return check_mask_values(mask)
        wanted = " or ".join(str(s) for s in dict.fromkeys((shape, no_c, yx)))
        raise ValueError(f"mask shape {mask.shape} does not match the image: expected {wanted}")

    def volume_mask(self, mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """A volume piece's mask (core letters, maybe without C or Z) as missing-pixel bools
        of the engine's ``shape`` = ``(C, D, H, W)``."""
        core = self.core_letters
        if mask.ndim == len(core):
            letters = core
        elif "C" in core and mask.ndim == len(core) - 1:
            letters = core.replace("C", "")
        else:
            letters = "".join(a for a in core if a in "YX")
        order = "".join(a for a in "CZYX" if a in letters)
        missing = np.transpose(mask != 0, [letters.index(a) for a in order])
        for i, a in enumerate("CZ"):
            if a not in order:
                missing = np.expand_dims(missing, i)
        return np.broadcast_to(missing, shape)

    def out_shape(self, factor: int = 1) -> tuple[int, ...]:
        """Shape of the result: Y and X times ``factor``."""
        return tuple(
            n * factor if a in "YX" else n for a, n in zip(self.axes, self.shape, strict=True)
        )


def stack_layout(shape: Sequence[int], axes: object, mode: object = "slices") -> StackLayout:
    """Check ``axes`` and ``mode`` for an array of ``shape`` (no axis of length 0);
    ``"volume"`` needs a ``Z`` axis with at least 2 slices."""
    letters = check_axes(axes, shape)
    empty = [a for a, n in zip(letters, shape, strict=True) if n == 0]
    if empty:
        raise ValueError(
            f"image is empty along axis {', '.join(empty)} (shape {tuple(shape)}, axes "
            f"{letters!r}): nothing to restore"
        )
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose 'slices' or 'volume'")
    if mode == "volume":
        if "Z" not in letters:
            raise ValueError(f"mode='volume' needs a Z axis, but axes are {letters!r}")
        depth = shape[letters.index("Z")]
        if depth < 2:
            raise ValueError(f"mode='volume' needs at least 2 Z slices, got {depth}")
    return StackLayout(letters, mode, tuple(int(n) for n in shape))  # type: ignore[arg-type]
