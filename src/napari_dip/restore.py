"""The public numpy API: ``denoise``, ``inpaint``, ``super_resolve``, ``deconvolve`` and
``restore_steps``, thin faces over the pipeline (:mod:`napari_dip.pipeline`).

Plain functions over arrays, in the style of ``skimage.restoration``: the input is never
modified, the output has the input's dtype, shape (times the factor for super-resolution) and
intensity range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .pipeline.plan import default_steps, make_plan
from .pipeline.request import make_request
from .pipeline.run import RestorationError, run_jobs
from .pipeline.snapshot import Snapshot

__all__ = [
    "RestorationError",
    "Snapshot",
    "deconvolve",
    "default_steps",
    "denoise",
    "inpaint",
    "restore_steps",
    "super_resolve",
]


def restore_steps(
    image: Any,
    *,
    task: str = "denoise",
    mask: Any = None,
    factor: int | None = None,
    psf: Any = None,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: str = "slices",
    should_stop: Callable[[], bool] | None = None,
    previews: bool = True,
    _fit_state: Any = None,
    **options: Any,
) -> Iterator[Snapshot]:
    """Run a Deep Image Prior restoration, yielding a :class:`Snapshot` every
    ``update_every`` steps of each piece; the last one has ``stop_reason`` set.

    Arguments that can be checked without reading the pixels are checked now (a
    ``ValueError`` or ``TypeError`` naming the problem); checks that read them (NaN, a
    constant image, the noise estimate) raise on the first ``next()``. Stop early by making
    ``should_stop()`` return True (checked every step; a last snapshot with the result so far
    still comes) or by closing the generator.

    Parameters
    ----------
    image : array_like
        ``(H, W)``; ``(H, W, C)``/``(C, H, W)`` with ``channel_axis``; any stack with
        ``axes``. Integer or float; a lazy array (dask, zarr) is read piece by piece.
    task : {"denoise", "inpaint", "super_resolve", "deconvolve"}
    mask : array_like, optional
        Inpainting: nonzero where pixels are missing (values there are ignored, may be NaN).
        ``(H, W)`` or the image's shape; with ``axes`` also the shape without ``C``.
    factor : int, optional
        Super-resolution: the integer upscaling factor (>= 2).
    psf : array_like, optional
        Deconvolution: the point-spread function (see :func:`deconvolve`).
    channel_axis : int, optional
        Axis of colour/channels of a 2D image, e.g. ``-1`` for RGB.
    axes : str, optional
        One letter per axis from ``T``, ``Z``, ``C``, ``Y``, ``X`` (e.g. ``"ZYX"``,
        ``"TZCYX"``) for stacks, time-lapses and volumes, instead of ``channel_axis``.
    mode : {"slices", "volume"}
        With ``axes``: every ``YX`` plane on its own, or every ``ZYX`` volume with a 3D
        network.
    should_stop : callable, optional
        Polled every step; return True to stop after the current step.
    previews : bool
        Snapshots before the last carry images (``estimate``, ``best``, ``result()``); with
        False only the last does, which saves the copies on big images.
    **options
        Run options: ``preset``, ``steps``, ``stop``, ``seed``, ``device``, ``precision``,
        ``update_every``, ``lr``, ``perturb_std``, ``tv_weight``, ``noise``, ``sigma``,
        ``gain``, ``offset``, ``read_noise``, ``normalize``, ``tile``, ``tile_overlap``,
        ``workers``, ``ensemble``, ``uncertainty``, ``warm_start``, ``fuse``
        (:data:`napari_dip.options.OPTIONS` says what each does).

    Returns
    -------
    iterator of Snapshot

    Examples
    --------
    >>> from napari_dip import restore_steps, samples
    >>> noisy, clean = samples.noisy(sigma=25, size=32)
    >>> for snap in restore_steps(noisy, steps=20, stop="none", update_every=10):
    ...     print(snap.step, snap.stop_reason)
    10 None
    20 step budget reached
    >>> snap.result().shape, snap.result().dtype
    ((32, 32), dtype('uint8'))
    """
    request = make_request(
        image,
        task=task,
        mask=mask,
        factor=factor,
        psf=psf,
        channel_axis=channel_axis,
        axes=axes,
        mode=mode,
        fit_state=_fit_state,
        **options,
    )
    return run_jobs([make_plan(request)], should_stop=should_stop, previews=previews)


def _finish(
    image: Any, task: str, callback: Callable[[Snapshot], object] | None, **kwargs: Any
) -> np.ndarray:
    """Run to the end (or until ``callback`` returns True) and return the result; raise
    :class:`RestorationError` (with the partial result) when pieces failed."""
    asked = [False]
    snapshots = restore_steps(
        image,
        task=task,
        should_stop=lambda: asked[0],
        previews=callback is not None,
        **kwargs,
    )
    last = None
    for last in snapshots:
        if callback is not None and not asked[0] and callback(last) is True:
            asked[0] = True
    assert last is not None
    result = last.result()
    if last.failures:
        raise RestorationError(last.stop_reason or "pieces failed", result, last.failures)
    if kwargs.get("uncertainty"):
        return result, last.uncertainty()  # type: ignore[return-value]
    return result


def denoise(
    image: Any,
    *,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: str = "slices",
    callback: Callable[[Snapshot], object] | None = None,
    **options: Any,
) -> np.ndarray:
    """Remove noise from ``image`` with Deep Image Prior.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` greyscale, multichannel with ``channel_axis``, or a stack with ``axes``.
    channel_axis, axes, mode
        As in :func:`restore_steps`.
    callback : callable, optional
        Called with each :class:`Snapshot`; return True to stop and get the result so far.
    **options
        Run options (``preset``, ``steps``, ``stop``, ``seed``, ``device``, ``noise``, …),
        see :func:`restore_steps`.

    Returns
    -------
    ndarray
        The input's shape, dtype and intensity range; with ``uncertainty=True`` a pair
        ``(result, sigma)``, ``sigma`` the per-pixel standard deviation (float32, the
        input's units) of an ensemble's members.

    Examples
    --------
    >>> import napari_dip
    >>> from napari_dip import samples
    >>> noisy, clean = samples.noisy(sigma=25, size=32)
    >>> napari_dip.denoise(noisy, steps=10, stop="none").shape
    (32, 32)
    """
    return _finish(
        image, "denoise", callback, channel_axis=channel_axis, axes=axes, mode=mode, **options
    )


def inpaint(
    image: Any,
    mask: Any,
    *,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: str = "slices",
    callback: Callable[[Snapshot], object] | None = None,
    **options: Any,
) -> np.ndarray:
    """Fill the missing pixels of ``image`` (where ``mask`` is nonzero) with Deep Image Prior.

    Values under the mask are ignored (they may be NaN). The whole image is returned as the
    network reproduces it, so known pixels are also lightly denoised.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` greyscale, multichannel with ``channel_axis``, or a stack with ``axes``.
    mask : array_like
        Nonzero = missing; ``(H, W)`` or the image's shape.
    channel_axis, axes, mode, callback, **options
        As in :func:`denoise`.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import napari_dip
    >>> from napari_dip import samples
    >>> damaged, mask, clean = samples.damaged(fraction=0.3, size=32)
    >>> napari_dip.inpaint(damaged, mask, steps=10, stop="none").shape
    (32, 32)
    """
    return _finish(
        image,
        "inpaint",
        callback,
        mask=mask,
        channel_axis=channel_axis,
        axes=axes,
        mode=mode,
        **options,
    )


def super_resolve(
    image: Any,
    factor: int,
    *,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: str = "slices",
    callback: Callable[[Snapshot], object] | None = None,
    **options: Any,
) -> np.ndarray:
    """Upscale ``image`` by an integer ``factor`` with Deep Image Prior.

    The result is fitted so that its anti-aliased bicubic downsampling reproduces ``image``,
    pixel centres aligned (it overlays the input exactly in napari).

    Parameters
    ----------
    image : array_like
        ``(H, W)`` greyscale, multichannel with ``channel_axis``, or a stack with ``axes``.
    factor : int
        Upscaling factor, an integer >= 2; Y and X grow by it.
    channel_axis, axes, mode, callback, **options
        As in :func:`denoise`.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import napari_dip
    >>> from napari_dip import samples
    >>> low, clean = samples.low_resolution(factor=2, size=32)
    >>> napari_dip.super_resolve(low, 2, steps=10, stop="none").shape
    (32, 32)
    """
    return _finish(
        image,
        "super_resolve",
        callback,
        factor=factor,
        channel_axis=channel_axis,
        axes=axes,
        mode=mode,
        **options,
    )


def deconvolve(
    image: Any,
    psf: Any,
    *,
    mask: Any = None,
    factor: int | None = None,
    channel_axis: int | None = None,
    axes: str | None = None,
    mode: str = "slices",
    callback: Callable[[Snapshot], object] | None = None,
    **options: Any,
) -> np.ndarray:
    """Undo the blur of a known point-spread function with Deep Image Prior.

    Parameters
    ----------
    image : array_like
        ``(H, W)`` greyscale, multichannel with ``channel_axis``, or a stack with ``axes``.
    psf : array_like
        The point-spread function, centred at ``size // 2`` along each axis: 2D, or 3D for
        ``mode="volume"``. It is normalised to sum 1.
    mask, factor
        Optional: missing pixels as in :func:`inpaint`, an upscaling factor as in
        :func:`super_resolve`.
    channel_axis, axes, mode, callback, **options
        As in :func:`denoise`.

    Returns
    -------
    ndarray
        The sharp image, in the input's shape (``factor`` times larger in Y and X) and dtype.

    Examples
    --------
    >>> import napari_dip
    >>> from napari_dip import samples
    >>> observed, psf, clean = samples.blurred_cells((32, 32))
    >>> camera = {"gain": 2.0, "offset": 100.0, "read_noise": 2.0}  # the sample's camera
    >>> sharp = napari_dip.deconvolve(observed, psf, noise="poisson-gaussian", steps=10, **camera)
    >>> sharp.shape, sharp.dtype
    ((32, 32), dtype('uint16'))
    """
    return _finish(
        image,
        "deconvolve",
        callback,
        psf=psf,
        mask=mask,
        factor=factor,
        channel_axis=channel_axis,
        axes=axes,
        mode=mode,
        **options,
    )
