"""A file as a job: read it, work out its axes, mask and output, and make its request. Shared
by the single-file commands and ``napari-dip batch``. Nothing here imports torch."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .io import (
    READABLE_SUFFIXES,
    WRITABLE_SUFFIXES,
    ImageFileError,
    check_writable,
    is_zarr,
    read_axes,
    read_image,
    read_ome_zarr,
    read_scale,
    write_image,
)
from .pipeline.request import Request, make_request

__all__ = ["WORDS", "FileJob", "default_output", "find_inputs", "open_file_job"]

# task -> word for the default output name
WORDS = {
    "denoise": "denoised",
    "inpaint": "inpainted",
    "super_resolve": "superres",
    "deconvolve": "deconvolved",
}


@dataclass(frozen=True, eq=False)
class FileJob:
    """A file read (lazily for OME-Zarr) with its checked request and where the result goes."""

    source: Path
    output: Path
    request: Request
    axes: str | None
    scale: dict[str, object]

    @property
    def spread_output(self) -> Path:
        """Where the uncertainty map goes: beside the output, ``NAME_std.tif``."""
        return self.output.with_name(f"{_stem(self.output)}_std.tif")

    def write(self, result: np.ndarray, spread: np.ndarray | None = None) -> None:
        """Write ``result`` to ``output`` atomically, with the input's pixel size (made
        ``factor`` times smaller in Y and X by super-resolution), and the uncertainty map
        (a float32 TIFF) when there is one; when the result cannot be written, neither is
        left (:class:`~napari_dip.io.ImageFileError`)."""
        f = self.request.factor
        scale = dict(self.scale)
        scale |= {k: float(scale[k]) / f for k in ("X", "Y") if k in scale}  # type: ignore[arg-type]
        if spread is None:
            write_image(self.output, result, axes=self.axes, scale=scale)
            return
        write_image(self.spread_output, spread.astype(np.float32), axes=self.axes, scale=scale)
        try:
            write_image(self.output, result, axes=self.axes, scale=scale)
        except ImageFileError:  # no uncertainty map without its result
            self.spread_output.unlink(missing_ok=True)
            raise


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", *READABLE_SUFFIXES, ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def default_output(path: Path, word: str, folder: Path | None = None) -> Path:
    """``IN``'s name with ``_word`` added, beside it or in ``folder``; its format when we can
    write it, else TIFF (OME-Zarr inputs become TIFF files)."""
    suffix = path.suffix if path.suffix.lower() in WRITABLE_SUFFIXES else ".tif"
    return (folder or path.parent) / f"{_stem(path)}_{word}{suffix}"


def find_inputs(patterns: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files, glob patterns and folders (their image files and Zarr stores, not recursive) as
    a list of inputs, in the order given, each once. A pattern that matches nothing, or a
    path that does not exist, raises :class:`ImageFileError`."""
    found: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        matches = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        if not matches:
            raise ImageFileError(f"{text}: no file matches")
        for match in matches:
            path = Path(match)
            if not path.exists():
                raise ImageFileError(f"{path}: no such file or folder")
            if path.is_dir() and not is_zarr(path):
                found.extend(
                    sorted(
                        p
                        for p in path.iterdir()
                        if is_zarr(p) or (p.is_file() and p.suffix.lower() in READABLE_SUFFIXES)
                    )
                )
            else:
                found.append(path)
    return list(dict.fromkeys(found))


def _read(path: Path) -> tuple[Any, str | None]:
    if is_zarr(path):
        return read_ome_zarr(path)
    image = read_image(path)
    return image, (read_axes(path) if image.ndim >= 3 else None)


def _channel_axis(image: Any, given: int | None, path: Path) -> int | None:
    """``given`` if set, -1 for (H, W, 3|4) colour images, None for 2D."""
    if given is not None or len(image.shape) != 3:
        return given
    if image.shape[-1] in (3, 4):
        return -1
    raise ImageFileError(
        f"{path} has shape {tuple(image.shape)}: give --channel-axis for a multichannel image "
        "(0 for (C, H, W), -1 for (H, W, C)), or --axes for a stack (e.g. --axes ZYX)"
    )


def _output_shape(request: Request) -> tuple[int, ...]:
    f, shape = request.factor, tuple(request.image.shape)
    if request.stack is not None:
        return request.stack.out_shape(f)
    return tuple(n if i == request.channel_axis else n * f for i, n in enumerate(shape))


def open_file_job(
    source: Path,
    output: Path,
    *,
    task: str,
    axes: str | None = None,
    mode: str = "slices",
    channel_axis: int | None = None,
    mask: Path | None = None,
    factor: int | None = None,
    psf: Any = None,
    options: dict[str, Any] | None = None,
) -> FileJob:
    """Read ``source`` and make its request. Axes: ``axes`` when given, else the file's own
    (TIFF ImageJ/OME metadata, OME-Zarr axes) for a stack unless ``channel_axis`` is given.
    Raises :class:`ImageFileError`, ``ValueError`` or ``TypeError`` with a message for the
    user; checks that ``output`` can hold the result before anything runs."""
    for other, what in [(source, "input"), (mask, "mask")]:
        if other is not None and _same_file(output, other):
            raise ValueError(f"the output {output} is the {what} file; choose another output")
    image, own_axes = _read(source)
    if axes is not None and channel_axis is not None:
        raise ValueError("give either axes or channel_axis, not both")
    chosen = axes.upper() if axes is not None else None
    if chosen is None and channel_axis is None and len(image.shape) >= 3:
        chosen = own_axes
    if chosen is None and mode != "slices":
        raise ValueError(f"mode {mode} needs the axes of {source}: give them (e.g. ZYX)")
    kwargs: dict[str, Any] = dict(options or {})
    if chosen is None:
        kwargs["channel_axis"] = _channel_axis(image, channel_axis, source)
    else:
        kwargs |= {"axes": chosen, "mode": mode}
    if mask is not None:
        values = read_image(mask)
        if kwargs.get("channel_axis") is None and values.ndim == 3 and values.shape[2] in (3, 4):
            values = values[..., :3].any(axis=-1)  # a mask drawn in colour, for a grey image
        kwargs["mask"] = values
    if factor is not None:
        kwargs["factor"] = factor
    if psf is not None:
        kwargs["psf"] = read_image(psf) if isinstance(psf, str | os.PathLike) else psf
    request = make_request(image, task=task, name=str(source), **kwargs)
    check_writable(output, np.dtype(image.dtype), _output_shape(request))
    return FileJob(source, output, request, chosen, read_scale(source))


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return a.samefile(b)
    return a.resolve() == b.resolve()
