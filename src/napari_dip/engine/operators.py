"""Forward operators ``A``: what the observation ``y`` is made of the clean image ``x``.

Each operator maps a batch ``x`` of shape ``(N, C, H, W)`` (or a volume ``(N, C, D, H, W)``) to
the observation domain. New tasks are new operators; the fit loop only ever calls ``A(x)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["Composition", "Downsample", "Identity", "Mask", "Operator"]


class Operator:
    """Base class: a differentiable map from image space to observation space."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def observed_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """Spatial shape of ``A(x)`` for an ``x`` of spatial ``shape``."""
        return shape

    def to(self, device: torch.device) -> Operator:
        return self

    def __matmul__(self, other: Operator) -> Composition:
        """``A @ B`` is ``x -> A(B(x))``, e.g. ``Mask(m) @ Downsample(2)``."""
        return Composition([other, self])


class Identity(Operator):
    """Denoising: the observation is the image itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Mask(Operator):
    """Inpainting: only the known pixels are observed.

    ``known`` is 1 where the pixel is known and 0 where it is missing, shape ``(1, 1 or C, H, W)``
    or, for volumes, ``(1, 1 or C, D, H, W)``. Multiplying by the mask (rather than indexing)
    keeps shapes fixed, so the data term is the paper's ``‖m ⊙ (x − y)‖²``.
    """

    def __init__(self, known: torch.Tensor):
        if known.ndim not in (4, 5):
            raise ValueError(
                f"mask must be (1, C, H, W) or (1, C, D, H, W), got shape {tuple(known.shape)}"
            )
        self.known = known.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.known

    def to(self, device: torch.device) -> Mask:
        return Mask(self.known.to(device))


class Downsample(Operator):
    """Super-resolution: anti-aliased bicubic downsampling by an integer ``factor``.

    Uses ``F.interpolate(mode="bicubic", antialias=True)``: torch's own differentiable op, the
    same kernel PIL and MATLAB ``imresize`` use to make low-resolution benchmark images, centre
    aligned (output pixel ``j`` sits over input pixels ``s·j … s·j+s−1``), so the result overlays
    the input exactly in napari. The paper used a hand-built Lanczos-2 kernel, a close relative;
    torch's op needs no kernel code of ours and runs on every device torch supports.

    A volume ``(N, C, D, H, W)`` is downsampled in Y and X only, slice by slice: Z-stacks are
    usually already coarse in Z (anisotropic), lateral super-resolution is what is asked for,
    and recovering axial detail from one stack is a different (deconvolution) problem.
    """

    def __init__(self, factor: int):
        if int(factor) != factor or factor < 2:
            raise ValueError(f"factor must be an integer >= 2, got {factor!r}")
        self.factor = int(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"image size {(h, w)} is not a multiple of factor {self.factor}")
        lead = x.shape[:-2]
        if x.ndim == 5:  # fold Z into the channels: bicubic is 2D, and Z stays as it is
            x = x.reshape(lead[0], -1, h, w)
        y = F.interpolate(
            x,
            size=(h // self.factor, w // self.factor),
            mode="bicubic",
            align_corners=False,
            antialias=True,
        )
        return y.reshape(*lead, h // self.factor, w // self.factor)

    def observed_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*shape[:-2], shape[-2] // self.factor, shape[-1] // self.factor)


class Composition(Operator):
    """Operators applied in order: ``Composition([Downsample(2), Mask(m)])`` downsamples first."""

    def __init__(self, operators: list[Operator]):
        self.operators = list(operators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.operators:
            x = op(x)
        return x

    def observed_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        for op in self.operators:
            shape = op.observed_shape(shape)
        return shape

    def to(self, device: torch.device) -> Composition:
        return Composition([op.to(device) for op in self.operators])
