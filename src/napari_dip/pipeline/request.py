"""A request: one image (or stack) to restore, its task inputs and its run options, checked.

Every check here is cheap: shapes, dtypes, names and numbers, nothing that reads the pixels of
a big or lazy image, so the CLI and the widget can make a request on their own thread and get
a clear ``ValueError``/``TypeError`` at once. Checks that need the pixels (NaN, a constant image,
the noise estimate) run when the request's parts are prepared, on the executor's side.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._arrays import _channel_axis, check_mask_values, prepare_mask
from .._axes import StackLayout, stack_layout
from ..options import TASKS, Options, check_choice, make_options
from .tiles import is_lazy

__all__ = ["Request", "auto_fusion", "check_factor", "make_request"]


@dataclass(frozen=True, eq=False)
class Request:
    """What to restore and how. ``image`` is the caller's array (numpy or lazy), never
    modified; ``known`` is the checked mask of a plain image as ``(C or 1, H, W)`` bool (True
    = known), ``mask`` the caller's mask of a stack (cut per piece); ``stack`` says how a
    stack's axes are cut (None: a plain 2D image with ``channel_axis``)."""

    task: str
    image: Any
    options: Options
    channel_axis: int | None = None
    stack: StackLayout | None = None
    known: np.ndarray | None = None
    mask: np.ndarray | None = None
    factor: int = 1
    psf: np.ndarray | None = None
    name: str = ""
    fit_state: Any = None  # continue a saved whole-image run (benchmarks)

    @property
    def lazy(self) -> bool:
        return is_lazy(self.image)


def auto_fusion(task: str, stop: Any, uncertainty: bool = False) -> str:
    """What ``fuse="auto"`` means: the biharmonic fill for an inpainting whose ``stop`` holds
    known pixels out (it lifted all three tuning images, docs/tasks/inpaint.md), else
    nothing. Not with ``uncertainty``: the map's scale was calibrated on unfused members."""
    holds_out = stop in ("auto", "validation") or getattr(stop, "wants_validation", False)
    return "biharmonic" if task == "inpaint" and holds_out and not uncertainty else "none"


def check_factor(factor: object) -> int:
    """An integer upscaling factor >= 2 (an integral float is accepted)."""
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real):
        raise TypeError(f"factor must be an integer >= 2, got {factor!r}")
    if not float(factor).is_integer() or factor < 2:
        raise ValueError(f"factor must be an integer >= 2, got {factor!r}")
    return int(factor)


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind == "b":
        raise TypeError("image is boolean; pass intensities (integer or float), not a mask")
    if dtype.kind not in "iuf":
        raise TypeError(f"image has dtype {dtype}; expected an integer or float array")


def _check_psf(
    psf: Any, shape: tuple[int, ...], stack: StackLayout | None, channel_axis: int | None
) -> np.ndarray:
    """The PSF checked against the image's spatial axes, normalised (float32, sum 1)."""
    from ..psf import check_psf

    if stack is None:
        spatial = tuple(n for i, n in enumerate(shape) if i != channel_axis)
        return check_psf(psf, 2, spatial)
    if stack.mode == "volume":
        return check_psf(psf, 3, tuple(stack.size(a) for a in "ZYX"))
    values = np.asarray(psf)
    if values.ndim == 3 and values.shape[0] > 1:
        raise ValueError(
            "a 3D PSF blurs along Z too: it needs mode='volume' (slices take a 2D PSF)"
        )
    return check_psf(values, 2, (stack.size("Y"), stack.size("X")))


def make_request(
    image: Any,
    *,
    task: str = "denoise",
    mask: Any = None,
    factor: Any = None,
    psf: Any = None,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: str = "slices",
    name: str = "",
    fit_state: Any = None,
    **options: Any,
) -> Request:
    """Check everything that can be checked without reading the pixels and freeze it."""
    opts = make_options(**options)
    check_choice("task", task, TASKS)
    if task not in ("inpaint", "deconvolve") and mask is not None:
        raise ValueError("mask is only used for task='inpaint' (or 'deconvolve')")
    if task not in ("super_resolve", "deconvolve") and factor is not None:
        raise ValueError("factor is only used for task='super_resolve' (or 'deconvolve')")
    if task != "deconvolve" and psf is not None:
        raise ValueError("psf is only used for task='deconvolve'")
    if opts.stop == "sure" and task != "denoise":
        raise ValueError(
            "stop='sure' estimates the error of a denoised image: it needs task='denoise'; "
            "use 'validation' or 'auto'"
        )
    if opts.fuse == "auto":
        opts = opts.replace(fuse=auto_fusion(task, opts.stop, opts.uncertainty))
    if opts.fuse == "biharmonic" and task != "inpaint":
        raise ValueError("fuse='biharmonic' fills missing pixels: it needs task='inpaint'")
    if opts.fuse not in ("none", "biharmonic"):
        if task != "denoise":
            raise ValueError(
                f"fuse={opts.fuse!r} blends two denoised images: it needs task='denoise'"
            )
        from .fusion import require

        require(opts.fuse)
    if opts.stop == "discrepancy" and (task != "denoise" or opts.tv_weight):
        raise ValueError(
            "stop='discrepancy' compares the data term with its value at the truth, which is "
            "known for denoising only: it needs task='denoise' and no tv_weight; use 'auto' or "
            "'wmv'"
        )
    if not (isinstance(image, np.ndarray) or is_lazy(image)):
        try:
            image = np.asarray(image)
        except (TypeError, ValueError) as err:
            raise ValueError(f"image cannot be read as an array ({err})") from None
    _check_dtype(np.dtype(image.dtype))
    shape = tuple(int(n) for n in image.shape)
    scale = 1
    if task == "super_resolve":
        if factor is None:
            raise ValueError("super-resolution needs a factor (an integer >= 2)")
        scale = check_factor(factor)
    elif factor is not None:
        scale = check_factor(factor)
    if task == "inpaint" and mask is None:
        raise ValueError("inpainting needs a mask (nonzero = missing pixels)")
    if task == "deconvolve" and psf is None:
        raise ValueError("deconvolution needs a psf (the point-spread function, an array)")
    stack = known = raw_mask = None
    if axes is not None:
        if channel_axis is not None:
            raise ValueError("give either axes or channel_axis, not both")
        if fit_state is not None:
            raise ValueError("_fit_state continues a single image's run; it takes no axes")
        stack = stack_layout(shape, axes, mode)
        if mask is not None:
            raw_mask = check_mask_values(mask) if not isinstance(mask, np.ndarray) else mask
            stack.piece_mask(raw_mask, next(stack.indices()))  # checks the shape and dtype
    else:
        if mode != "slices":
            raise ValueError("mode is used with axes (e.g. axes='ZYX', mode='volume')")
        channel_axis = _channel_axis(len(shape), channel_axis)
        if mask is not None:
            known = prepare_mask(mask, shape, channel_axis)
    checked_psf = None
    if psf is not None:
        checked_psf = _check_psf(psf, shape, stack, channel_axis)
    return Request(
        task=task,
        image=image,
        options=opts,
        channel_axis=channel_axis,
        stack=stack,
        known=known,
        mask=raw_mask,
        factor=scale,
        psf=checked_psf,
        name=name,
        fit_state=fit_state,
    )
