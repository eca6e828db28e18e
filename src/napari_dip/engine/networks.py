"""Generator networks ``f_θ``: the paper's "skip" encoder–decoder and the decoder-only network.

Both come with a frozen config that says what the network needs: ``multiple`` (output sides
must be a multiple of it), ``input_shape(shape)`` (the spatial shape of ``z`` for an output of
``shape``) and ``build(in_channels, out_channels)``. The spectral-bias controls of Shi et al.
(IJCV 2022) are options: ``lipschitz`` (λ of the Lipschitz-bounded convolutions, ``None`` =
off), ``upsample_mode="gaussian"`` with ``upsample_sigma`` and ``norm="mean"`` (mean-only
BatchNorm, which a Lipschitz bound needs: plain BatchNorm divides the scale back out).

``dims=3`` builds the same networks from ``Conv3d`` for volumes ``(N, C, D, H, W)``. Microscopy
Z-stacks are short (often 10–30 slices) and anisotropic (the Z step several times the pixel
size), so ``z_scales`` says how many of the finest scales also halve Z; the coarser ones keep
Z as it is (stride ``(1, 2, 2)``, upsampling in Y and X only). Halving Z as often as Y and X
would merge slices that lie far apart and leave levels one slice deep, where a 3×3×3 kernel
sees nothing but its own reflection padding. ``multiple_z`` is what Z must be a multiple of.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GaussianUpsample, MeanOnlyBatchNorm2d, bound_lipschitz

__all__ = ["DecoderConfig", "DecoderNet", "NetworkConfig", "SkipConfig", "SkipNet"]

UPSAMPLE_MODES = ("nearest", "bilinear", "bicubic", "gaussian")
NORMS = ("batch", "mean")
PADDINGS = ("reflect", "zeros")


def _check_controls(cfg: SkipConfig | DecoderConfig, stages: int) -> None:
    if cfg.dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {cfg.dims!r}")
    if cfg.z_scales is not None:
        if cfg.dims != 3:
            raise ValueError("z_scales is only used with dims=3")
        if not (isinstance(cfg.z_scales, int) and 0 <= cfg.z_scales <= stages):
            raise ValueError(f"z_scales must be an integer in [0, {stages}], got {cfg.z_scales!r}")
    if cfg.dims == 3 and cfg.upsample_mode == "bicubic":
        raise ValueError("bicubic upsampling is 2D only; use 'bilinear' (trilinear in 3D)")
    if cfg.upsample_mode not in UPSAMPLE_MODES:
        modes = ", ".join(UPSAMPLE_MODES)
        raise ValueError(f"unknown upsample_mode {cfg.upsample_mode!r}; choose one of {modes}")
    if cfg.upsample_mode == "gaussian":
        if len(cfg.upsample_sigma) != stages or not all(s > 0 for s in cfg.upsample_sigma):
            raise ValueError(f"gaussian upsampling needs {stages} positive upsample_sigma values")
    elif cfg.upsample_sigma:
        raise ValueError("upsample_sigma is only used with upsample_mode='gaussian'")
    if cfg.norm not in NORMS:
        raise ValueError(f"unknown norm {cfg.norm!r}; choose one of {', '.join(NORMS)}")
    if cfg.lipschitz is not None:
        if not cfg.lipschitz > 0:
            raise ValueError(f"lipschitz must be positive or None, got {cfg.lipschitz!r}")
        if cfg.norm == "batch":
            raise ValueError(
                "a Lipschitz bound needs norm='mean': BatchNorm divides by the std, which "
                "cancels any rescaling of the convolution weights"
            )


def _constrain(body: nn.Module, lam: float | None) -> None:
    """He-initialise the convolutions of ``body`` and bound them at ``λ`` (when set).

    With mean-only normalisation nothing rescales the activations, so the weights start at
    unit gain for LeakyReLU(0.2); the bound then caps them.
    """
    if lam is None:
        return
    for m in body.modules():
        if isinstance(m, nn.Conv2d | nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
    bound_lipschitz(body, lam)


@dataclass(frozen=True)
class SkipConfig:
    """Shape of a skip network; the defaults are the paper's (Ulyanov et al. 2018).

    One entry per scale in ``down``/``up``/``skip``: channels of the stride-2 encoder block, of
    the decoder block, and of the 1×1 skip branch (0 = no skip at that scale).
    """

    down: tuple[int, ...] = (128, 128, 128, 128, 128)
    up: tuple[int, ...] = (128, 128, 128, 128, 128)
    skip: tuple[int, ...] = (4, 4, 4, 4, 4)
    kernel_down: int = 3
    kernel_up: int = 3
    kernel_skip: int = 1
    upsample_mode: str = "bilinear"
    extra_1x1_up: bool = True
    upsample_sigma: tuple[float, ...] = ()  # gaussian mode: one σ per scale, coarsest first
    lipschitz: float | None = None
    norm: str = "batch"
    dims: int = 2  # 3: Conv3d for (N, C, D, H, W) volumes
    z_scales: int | None = None  # dims=3: how many of the finest scales halve Z (None: all)
    # The convolutions' padding: "reflect" (the paper's) or "zeros", which torch folds into
    # the convolution instead of a separate padding pass forward and back (see _conv).
    padding: str = "reflect"

    def __post_init__(self) -> None:
        if not (len(self.down) == len(self.up) == len(self.skip) >= 1):
            raise ValueError("down, up and skip need one entry per scale")
        if self.padding not in PADDINGS:
            choices = ", ".join(PADDINGS)
            raise ValueError(f"unknown padding {self.padding!r}; choose one of {choices}")
        _check_controls(self, self.scales)

    @property
    def scales(self) -> int:
        return len(self.down)

    def finest(self, scales: int) -> SkipConfig:
        """The same network with only its ``scales`` finest scales (the coarsest dropped)."""
        if not 1 <= scales <= self.scales:
            raise ValueError(f"scales must be in 1..{self.scales}, got {scales!r}")
        sigma = self.upsample_sigma[self.scales - scales :] if self.upsample_sigma else ()
        z = None if self.z_scales is None else min(self.z_scales, scales)
        return replace(
            self,
            down=self.down[:scales],
            up=self.up[:scales],
            skip=self.skip[:scales],
            upsample_sigma=sigma,
            z_scales=z,
        )

    @property
    def multiple(self) -> int:
        """Image sides must be a multiple of this (each scale halves the size)."""
        return 2**self.scales

    @property
    def z_levels(self) -> int:
        """How many scales halve Z (3D only)."""
        return self.scales if self.z_scales is None else self.z_scales

    @property
    def multiple_z(self) -> int:
        """The depth of a volume must be a multiple of this (3D only)."""
        return 2**self.z_levels

    def input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The spatial shape of ``z`` for an output of ``shape``: the same."""
        return _divisible(shape, self)

    def build(self, in_channels: int, out_channels: int) -> SkipNet:
        return SkipNet(in_channels, out_channels, self)


@dataclass(frozen=True)
class DecoderConfig:
    """Decoder-only network of Shi et al. (IJCV 2022): the input lives at 1/2^stages resolution.

    Each stage: ×2 upsampling, then ``convs_per_stage`` × (``kernel`` conv with ``channels[i]``
    outputs, normalisation, LeakyReLU(0.2)); then a free 1×1 convolution and a sigmoid.
    ``upsample_sigma`` has one σ per stage, coarsest first.
    """

    channels: tuple[int, ...] = (128, 128, 128, 128, 128)
    convs_per_stage: int = 2
    kernel: int = 3
    upsample_mode: str = "gaussian"
    upsample_sigma: tuple[float, ...] = (0.1, 0.1, 0.1, 0.5, 0.5)
    lipschitz: float | None = 1.8
    norm: str = "mean"
    dims: int = 2  # 3: Conv3d for (N, C, D, H, W) volumes
    z_scales: int | None = None  # dims=3: how many of the finest stages double Z (None: all)

    def __post_init__(self) -> None:
        if len(self.channels) < 1 or self.convs_per_stage < 1:
            raise ValueError("a decoder needs at least one stage and one convolution per stage")
        _check_controls(self, self.stages)

    @property
    def stages(self) -> int:
        return len(self.channels)

    @property
    def multiple(self) -> int:
        """Output sides must be a multiple of this (each stage doubles the size)."""
        return 2**self.stages

    @property
    def z_levels(self) -> int:
        """How many stages double Z (3D only): the finest ones."""
        return self.stages if self.z_scales is None else self.z_scales

    @property
    def multiple_z(self) -> int:
        """The depth of a volume must be a multiple of this (3D only)."""
        return 2**self.z_levels

    def input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The spatial shape of ``z`` for an output of ``shape``: ``1/multiple`` of it."""
        sizes = _divisible(shape, self)
        factors = (self.multiple_z,) * (len(sizes) - 2) + (self.multiple, self.multiple)
        return tuple(n // f for n, f in zip(sizes, factors, strict=True))

    def build(self, in_channels: int, out_channels: int) -> DecoderNet:
        return DecoderNet(in_channels, out_channels, self)


NetworkConfig = SkipConfig | DecoderConfig


def _divisible(shape: tuple[int, ...], cfg: NetworkConfig) -> tuple[int, ...]:
    sizes = tuple(int(n) for n in shape)
    if len(sizes) != cfg.dims:
        raise ValueError(f"output shape {shape} must have {cfg.dims} sides for dims={cfg.dims}")
    multiples = (cfg.multiple_z,) * (cfg.dims - 2) + (cfg.multiple, cfg.multiple)
    if any(n % m or n < 1 for n, m in zip(sizes, multiples, strict=True)):
        wanted = " × ".join(map(str, multiples))
        raise ValueError(f"output shape {shape} must have sides that are multiples of {wanted}")
    return sizes


def _conv(
    c_in: int,
    c_out: int,
    k: int,
    stride: int | tuple[int, ...] = 1,
    dims: int = 2,
    bias: bool = True,
    padding: str = "reflect",
) -> nn.Module:
    # Reflection padding as in the paper: no dark frame creeping in from zero padding. Zeros
    # are cheaper (no padded copy of every activation, forward and back: a 144² fast step
    # 15 % faster here) and nearly as good in small denoising tiles (pipeline.plan.tile_preset).
    conv = nn.Conv3d if dims == 3 else nn.Conv2d
    return conv(c_in, c_out, k, stride, padding=(k - 1) // 2, padding_mode=padding, bias=bias)


def _norm(channels: int, kind: str, dims: int = 2) -> nn.Module:
    if kind == "mean":
        return MeanOnlyBatchNorm2d(channels)
    return nn.BatchNorm3d(channels) if dims == 3 else nn.BatchNorm2d(channels)


def _block(
    c_in: int,
    c_out: int,
    k: int,
    stride: int | tuple[int, ...] = 1,
    norm: str = "batch",
    dims: int = 2,
    padding: str = "reflect",
) -> list[nn.Module]:
    conv = _conv(c_in, c_out, k, stride, dims, padding=padding)
    return [conv, _norm(c_out, norm, dims), nn.LeakyReLU(0.2)]


def _stride(dims: int, z: bool) -> int | tuple[int, ...]:
    return 2 if dims == 2 or z else (1, 2, 2)


def _upsample(mode: str, sigma: float | None, dims: int = 2, z: bool = True) -> nn.Module:
    if mode == "gaussian":
        assert sigma is not None
        return GaussianUpsample(sigma, dims=dims, upsample_z=z)
    return _Upsample(mode, dims, z)


class _Upsample(nn.Module):
    def __init__(self, mode: str, dims: int = 2, z: bool = True):
        super().__init__()
        self.mode = "trilinear" if dims == 3 and mode == "bilinear" else mode
        self.factor: float | tuple[float, ...] = 2 if dims == 2 or z else (1.0, 2.0, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.factor, mode="nearest")
        return F.interpolate(x, scale_factor=self.factor, mode=self.mode, align_corners=False)


class _Scale(nn.Module):
    """One scale: a skip branch beside a deeper branch (down, next scale, up), then merge."""

    def __init__(self, c_in: int, i: int, cfg: SkipConfig):
        super().__init__()
        n_skip, n_down, n_up = cfg.skip[i], cfg.down[i], cfg.up[i]
        norm, dims, pad = cfg.norm, cfg.dims, cfg.padding
        z = dims == 3 and i < cfg.z_levels  # the finest z_levels scales halve Z
        self.skip = (
            nn.Sequential(*_block(c_in, n_skip, cfg.kernel_skip, norm=norm, dims=dims, padding=pad))
            if n_skip
            else None
        )
        deeper = _block(c_in, n_down, cfg.kernel_down, _stride(dims, z), norm, dims, pad)
        deeper += _block(n_down, n_down, cfg.kernel_down, norm=norm, dims=dims, padding=pad)
        if i + 1 < cfg.scales:
            deeper.append(_Scale(n_down, i + 1, cfg))
            k = cfg.up[i + 1]
        else:
            k = n_down
        # Scale i upsamples from 1/2^(i+1) to 1/2^i; upsample_sigma is listed coarsest first.
        sigma = cfg.upsample_sigma[cfg.scales - 1 - i] if cfg.upsample_sigma else None
        deeper.append(_upsample(cfg.upsample_mode, sigma, dims, z))
        self.deeper = nn.Sequential(*deeper)
        self.merge_norm = _norm(n_skip + k, norm, dims)
        merge = _block(n_skip + k, n_up, cfg.kernel_up, norm=norm, dims=dims, padding=pad)
        if cfg.extra_1x1_up:
            merge += _block(n_up, n_up, 1, norm=norm, dims=dims, padding=pad)
        self.merge = nn.Sequential(*merge)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.deeper(x)
        if self.skip is not None:
            y = torch.cat([self.skip(x), y], dim=1)
        return self.merge(self.merge_norm(y))


class SkipNet(nn.Module):
    """The "skip" hourglass: encoder–decoder with skip connections, sigmoid output in [0, 1].

    With ``config.lipschitz`` set, every convolution but the output 1×1 ``head`` is bounded.
    """

    def __init__(self, in_channels: int, out_channels: int, config: SkipConfig | None = None):
        super().__init__()
        self.config = config or SkipConfig()
        self.body = _Scale(in_channels, 0, self.config)
        self.head = _conv(self.config.up[0], out_channels, 1, dims=self.config.dims)
        _constrain(self.body, self.config.lipschitz)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(z)))


class DecoderNet(nn.Module):
    """Decoder only (Shi et al.): ``stages`` × (upsample ×2, convolutions), 1×1 head, sigmoid.

    With ``config.lipschitz`` set, every convolution but the output 1×1 ``head`` is bounded.
    """

    def __init__(self, in_channels: int, out_channels: int, config: DecoderConfig | None = None):
        super().__init__()
        self.config = cfg = config or DecoderConfig()
        layers: list[nn.Module] = []
        c = in_channels
        for i, width in enumerate(cfg.channels):
            sigma = cfg.upsample_sigma[i] if cfg.upsample_sigma else None
            z = i >= cfg.stages - cfg.z_levels  # the finest z_levels stages double Z
            layers.append(_upsample(cfg.upsample_mode, sigma, cfg.dims, z))
            for _ in range(cfg.convs_per_stage):
                # No conv bias: the normalisation right after removes it and adds its own.
                conv = _conv(c, width, cfg.kernel, dims=cfg.dims, bias=False)
                layers += [conv, _norm(width, cfg.norm, cfg.dims), nn.LeakyReLU(0.2)]
                c = width
        self.body = nn.Sequential(*layers)
        self.head = _conv(c, out_channels, 1, dims=cfg.dims)
        _constrain(self.body, cfg.lipschitz)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(z)))
