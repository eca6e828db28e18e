"""Blur by a point-spread function (PSF): the forward operator of deconvolution.

The observation of a widefield or confocal microscope is the object convolved with the PSF.
:class:`Convolution` applies that blur to a batch, with a direct and an FFT implementation that
agree to float32 precision; the PSF itself is checked and modelled in :mod:`.psf`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F

from .operators import Operator

__all__ = ["Convolution"]

METHODS = ("auto", "direct", "fft")
# "auto" takes the FFT path for kernels with more taps than these (2D / 3D).
# Measured (2-core CPU, forward+backward, 128²–256², 16–32×64²): FFT wins from 5×5 and 3×3×3.
FFT_TAPS_2D = 3 * 3
FFT_TAPS_3D = 2 * 2 * 2
FFT_CACHE_SIZE = 8  # kernel spectra kept per operator (one per padded shape, device and dtype)


def _fast_len(n: int) -> int:
    """Smallest 2·3·5-smooth integer ≥ ``n``: pocketfft is fastest on such lengths."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """A context that turns autocast off on ``device_type`` (a no-op where torch has none)."""
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except (RuntimeError, ValueError):
        return contextlib.nullcontext()


class Convolution(Operator):
    """Deconvolution: ``A(x)`` is ``x`` convolved with a fixed PSF, the same for every channel.

    A 2D PSF ``(h, w)`` blurs 4-D batches ``(N, C, H, W)`` and, slice by slice in Y and X, 5-D
    volumes ``(N, C, D, H, W)``; a 3D PSF ``(d, h, w)`` blurs volumes in Z, Y and X. It is a
    true (flipped) linear convolution, ``A(x)[i] = Σ_t psf[t] · x[i + c − t]``, whose centre is
    ``c = size // 2`` along each axis, for odd and even sizes alike (as ``scipy.ndimage.convolve``
    and ``numpy.fft.fftshift``; ``scipy.signal.fftconvolve(mode="same")`` centres even kernels
    one pixel earlier, at ``(size − 1) // 2``).

    The output has the shape of the input and the boundary is zero: there is no wrap-around,
    but pixels within :attr:`margin` of the border miss light from outside ``x``. The caller
    therefore makes ``x`` larger than the observed area by the margin and compares only the
    observed interior with ``y``.

    Parameters
    ----------
    psf : tensor or array, shape (h, w) or (d, h, w)
        Real and finite; used as given (check and normalise user input with
        :func:`.psf.check_psf`). It is a constant: no gradient flows to it.
    method : {"auto", "direct", "fft"}
        ``"direct"`` is ``conv2d``/``conv3d``; ``"fft"`` multiplies spectra zero-padded to the
        linear-convolution size (the PSF's spectrum is cached per shape). ``"auto"`` takes the
        FFT above ``FFT_TAPS_2D`` / ``FFT_TAPS_3D`` kernel taps, where it is the faster.

    Notes
    -----
    Computation and result are float32 (float64 for float64 input), also under
    ``torch.autocast``: a blurred bf16 image loses the small differences deconvolution is after.
    """

    def __init__(self, psf: Any, method: str = "auto"):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        kernel = torch.as_tensor(psf)  # TypeError for object or string arrays
        if kernel.dtype == torch.bool or kernel.is_complex():
            raise TypeError(f"the PSF must be real numbers, got dtype {kernel.dtype}")
        if kernel.ndim not in (2, 3) or kernel.numel() == 0:
            raise ValueError(f"the PSF must be 2D or 3D, got shape {tuple(kernel.shape)}")
        kernel = kernel.detach().to(torch.float32, copy=True)
        if not torch.isfinite(kernel).all():
            raise ValueError("the PSF has NaN or infinite values")
        self.psf = kernel
        self.method = method
        self._fft_cache: dict[tuple, torch.Tensor] = {}

    @property
    def margin(self) -> tuple[tuple[int, int], ...]:
        """Per PSF axis, ``(before, after)``: how many pixels at the start and at the end of the
        result miss light from outside ``x``, ``(size − 1 − size // 2, size // 2)``. A point at
        index ``j`` spreads from ``j − size // 2`` to ``j + size − 1 − size // 2``."""
        return tuple((m - 1 - m // 2, m // 2) for m in self.psf.shape)

    @property
    def uses_fft(self) -> bool:
        """Whether :meth:`forward` takes the FFT path (``method``, or the tap-count rule)."""
        if self.method != "auto":
            return self.method == "fft"
        limit = FFT_TAPS_2D if self.psf.ndim == 2 else FFT_TAPS_3D
        return self.psf.numel() > limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(x, adjoint=False)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """The adjoint ``Aᵀ``: correlation with the PSF, same shape, so ``⟨Ax, y⟩ = ⟨x, Aᵀy⟩``."""
        return self._apply(y, adjoint=True)

    def to(self, device: torch.device) -> Convolution:
        return Convolution(self.psf.to(device), self.method)

    def __repr__(self) -> str:
        return f"Convolution(psf shape {tuple(self.psf.shape)}, method={self.method!r})"

    # The adjoint is the convolution with the flipped PSF centred at size − 1 − size // 2.
    def _apply(self, x: torch.Tensor, adjoint: bool) -> torch.Tensor:
        k = self.psf.ndim
        if x.ndim not in (4, 5) or (k == 3 and x.ndim != 5):
            want = "(N, C, D, H, W)" if k == 3 else "(N, C, H, W) or (N, C, D, H, W)"
            raise ValueError(f"a {k}D PSF needs a batch {want}, got shape {tuple(x.shape)}")
        dims = tuple(range(-k, 0))
        with _no_autocast(x.device.type):
            dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
            x = x.to(dtype)
            kernel = self.psf.to(x.device, dtype)
            if adjoint:
                kernel = kernel.flip(dims)
                centres = [m - 1 - m // 2 for m in kernel.shape]
            else:
                centres = [m // 2 for m in kernel.shape]
            if self.uses_fft:
                return self._fft(x, kernel, centres, adjoint)
            return _direct(x, kernel, centres)

    def _fft(
        self, x: torch.Tensor, kernel: torch.Tensor, centres: list[int], adjoint: bool
    ) -> torch.Tensor:
        k = kernel.ndim
        dims = tuple(range(-k, 0))
        size = x.shape[-k:]
        padded = tuple(_fast_len(n + m - 1) for n, m in zip(size, kernel.shape, strict=True))
        spectrum = self._kernel_spectrum(kernel, padded, adjoint)
        full = torch.fft.irfftn(
            torch.fft.rfftn(x, s=padded, dim=dims) * spectrum, s=padded, dim=dims
        )
        for dim, c, n in zip(dims, centres, size, strict=True):
            full = full.narrow(dim, c, n)
        return full.contiguous()

    def _kernel_spectrum(
        self, kernel: torch.Tensor, padded: tuple[int, ...], adjoint: bool
    ) -> torch.Tensor:
        """The PSF's ``rfftn`` at ``padded`` size, from the cache when a fit asks again."""
        key = (padded, kernel.device, kernel.dtype, adjoint)
        spectrum = self._fft_cache.get(key)
        if spectrum is None:
            dims = tuple(range(-kernel.ndim, 0))
            spectrum = torch.fft.rfftn(kernel, s=padded, dim=dims)
            if len(self._fft_cache) >= FFT_CACHE_SIZE:
                self._fft_cache.pop(next(iter(self._fft_cache)))
            self._fft_cache[key] = spectrum
        return spectrum


def _direct(x: torch.Tensor, kernel: torch.Tensor, centres: list[int]) -> torch.Tensor:
    """``conv2d``/``conv3d`` (a correlation) with the flipped kernel, zero-padded so the output
    keeps the input's shape and ``out[i] = Σ_t kernel[t] · x[i + c − t]``."""
    k = kernel.ndim
    shape = x.shape
    flat = x.reshape(-1, 1, *shape[-k:])  # every channel (and, for a 2D PSF, every Z) alike
    pad: list[int] = []
    for m, c in zip(reversed(kernel.shape), reversed(centres), strict=True):
        pad += [m - 1 - c, c]  # F.pad lists the last axis first
    flat = F.pad(flat, pad)
    weight = kernel.flip(tuple(range(k)))[None, None]
    conv = F.conv2d if k == 2 else F.conv3d
    return conv(flat, weight).reshape(shape)
