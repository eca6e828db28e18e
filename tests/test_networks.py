"""Spectral-bias controls: Lipschitz-bounded convolutions, Gaussian upsampling, the decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import napari_dip
from napari_dip.engine import (
    PRESETS,
    DecoderConfig,
    DecoderNet,
    GaussianUpsample,
    LipschitzBound,
    MeanOnlyBatchNorm2d,
    SkipConfig,
    SkipNet,
    bound_lipschitz,
    build_prior,
    get_preset,
)

CPU = torch.device("cpu")
NEW_PRESETS = ("fast-lipschitz", "fast-gaussian", "decoder")


def _sigma_max(w: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(w.detach().flatten(1), ord=2).item()


def test_lipschitz_bound_caps_the_largest_singular_value():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    with torch.no_grad():
        conv.weight.mul_(20)
    assert _sigma_max(conv.weight) > 5
    bound_lipschitz(conv, 1.4)
    for _ in range(3):  # a few training forwards: one power iteration each
        conv(torch.rand(1, 8, 6, 6))
    assert _sigma_max(conv.weight) == pytest.approx(1.4, rel=1e-3)
    # The gradient reaches the unconstrained weight through the bound.
    conv(torch.rand(1, 8, 6, 6)).sum().backward()
    assert conv.parametrizations.weight.original.grad is not None


def test_lipschitz_bound_leaves_small_weights_unchanged():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3)
    before = conv.weight.detach().clone()
    assert _sigma_max(before) < 1.4
    bound_lipschitz(conv, 1.4)
    assert torch.equal(conv.weight, before)


def test_lipschitz_power_iteration_only_in_training():
    conv = bound_lipschitz(nn.Conv2d(3, 5, 3), 1.0)
    bound = conv.parametrizations.weight[0]
    assert isinstance(bound, LipschitzBound)
    conv.eval()
    u = bound._u.clone()
    conv(torch.rand(1, 3, 5, 5))
    assert torch.equal(bound._u, u)


@pytest.mark.parametrize("config", [SkipConfig(lipschitz=1.4, norm="mean"), DecoderConfig()])
def test_every_conv_but_the_head_is_bounded(config):
    torch.manual_seed(0)
    net = config.build(32, 3)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    bounded = [m for m in convs if hasattr(m, "parametrizations")]
    assert net.head not in bounded
    assert len(bounded) == len(convs) - 1
    with torch.no_grad():
        net.head.weight.mul_(100)  # the head stays free
    assert _sigma_max(net.head.weight) > 10
    net(torch.rand(1, 32, *config.input_shape((64, 64))))
    # Power iteration approaches σ_max from below; freshly initialised random weights have
    # nearly equal top singular values, so the estimate may still be a little short.
    for conv in bounded:
        assert _sigma_max(conv.weight) <= config.lipschitz * 1.02


def test_lipschitz_needs_mean_only_batchnorm():
    with pytest.raises(ValueError, match="norm='mean'"):
        SkipConfig(lipschitz=1.4)
    with pytest.raises(ValueError, match="upsample_sigma"):
        SkipConfig(upsample_mode="gaussian")
    with pytest.raises(ValueError, match="upsample_mode"):
        DecoderConfig(upsample_mode="area")


def test_mean_only_batchnorm_subtracts_the_mean_only():
    norm = MeanOnlyBatchNorm2d(2)
    with torch.no_grad():
        norm.bias.copy_(torch.tensor([0.5, -1.0]))
    x = torch.rand(1, 2, 4, 4) * 7
    y = norm(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), norm.bias.detach(), atol=1e-5)
    assert torch.allclose(y.std(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)), atol=1e-5)


def test_gaussian_upsampling_doubles_keeps_constants_and_is_fixed():
    up = GaussianUpsample(0.5)
    assert list(up.parameters()) == []
    assert up(torch.rand(1, 3, 5, 7)).shape == (1, 3, 10, 14)
    flat = torch.full((1, 2, 6, 4), 0.3)
    assert torch.allclose(up(flat), torch.full((1, 2, 12, 8), 0.3), atol=1e-6)


def test_gaussian_upsampling_is_centred_like_bilinear():
    ramp = torch.arange(8, dtype=torch.float32).repeat(8, 1)[None, None]
    bilinear = nn.functional.interpolate(ramp, scale_factor=2, mode="bilinear")
    # A ramp is kept by any symmetric kernel: the pixel positions must match bilinear's.
    assert torch.allclose(GaussianUpsample(1.0)(ramp)[..., 4:12], bilinear[..., 4:12], atol=0.03)
    # σ → 0 is nearest-neighbour: each input pixel fills its 2×2 block.
    near = nn.functional.interpolate(ramp, scale_factor=2, mode="nearest")
    assert torch.allclose(GaussianUpsample(0.1)(ramp), near, atol=1e-4)


def test_decoder_maps_its_low_resolution_input_to_the_output_size():
    cfg = DecoderConfig(channels=(8, 8, 8, 8, 8))
    assert cfg.multiple == 32
    assert cfg.input_shape((64, 96)) == (2, 3)
    with pytest.raises(ValueError, match="multiples of 32"):
        cfg.input_shape((64, 90))
    net = DecoderNet(4, 3, cfg)
    out = net(torch.rand(1, 4, 2, 3))
    assert out.shape == (1, 3, 64, 96)
    assert 0 <= out.min() and out.max() <= 1


def test_build_prior_gives_the_decoder_a_low_resolution_input():
    prior = build_prior(get_preset("decoder"), (64, 128), 1, perturb_std=0, seed=0, device=CPU)
    assert prior.z.shape == (1, 32, 2, 4)
    assert prior().shape == (1, 1, 64, 128)
    meshgrid = PRESETS["decoder"].__class__(
        name="decoder-meshgrid",
        network=DecoderConfig(channels=(8, 8, 8, 8, 8)),
        tasks=PRESETS["decoder"].tasks,
        input_kind="meshgrid",
    )
    prior = build_prior(meshgrid, (64, 64), 3, perturb_std=0, seed=0, device=CPU)
    assert prior.z.shape == (1, 2, 2, 2)
    assert prior().shape == (1, 3, 64, 64)


def test_default_presets_are_untouched():
    # The paper and fast networks still use plain BatchNorm, bilinear upsampling, no bound.
    for name in ("paper", "fast"):
        net = build_prior(get_preset(name), (32, 32), 1, perturb_std=0, seed=0, device=CPU).net
        assert isinstance(net, SkipNet)
        assert not any(isinstance(m, (LipschitzBound, MeanOnlyBatchNorm2d)) for m in net.modules())
        assert not any(isinstance(m, GaussianUpsample) for m in net.modules())


@pytest.mark.parametrize("name", NEW_PRESETS)
def test_new_presets_denoise_an_odd_sized_image(name):
    assert PRESETS[name].description
    image = np.random.default_rng(0).random((37, 53)).astype(np.float32)
    out = napari_dip.denoise(image, preset=name, steps=3, seed=0, device="cpu")
    assert out.shape == image.shape and out.dtype == image.dtype
    assert np.isfinite(out).all()


@pytest.mark.parametrize("name", ("fast-lipschitz", "decoder"))
def test_new_presets_are_deterministic_for_a_seed(name):
    image = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    a = napari_dip.denoise(image, preset=name, steps=3, seed=5, device="cpu")
    b = napari_dip.denoise(image, preset=name, steps=3, seed=5, device="cpu")
    c = napari_dip.denoise(image, preset=name, steps=3, seed=6, device="cpu")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_finest_scales_of_a_skip_network():
    from napari_dip.engine import SkipConfig

    net = SkipConfig(down=(8, 16, 32), up=(8, 16, 32), skip=(4, 4, 0))
    two = net.finest(2)
    assert (two.down, two.up, two.skip, two.multiple) == ((8, 16), (8, 16), (4, 4), 4)
    assert net.finest(3) == net
    with pytest.raises(ValueError, match="scales"):
        net.finest(0)


def test_zero_padding_is_folded_into_the_convolutions():
    import torch

    from napari_dip.engine import SkipConfig

    def padded_convs(padding: str) -> tuple[torch.nn.Module, list[torch.nn.Conv2d]]:
        net = SkipConfig(down=(4, 8), up=(4, 8), skip=(2, 2), padding=padding).build(3, 1)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        return net, [m for m in convs if m.kernel_size[0] > 1]

    _, convs = padded_convs("reflect")  # the paper's, and SkipConfig's default
    assert SkipConfig().padding == "reflect" and {m.padding_mode for m in convs} == {"reflect"}
    net, convs = padded_convs("zeros")
    assert convs and all(m.padding_mode == "zeros" and m.padding == (1, 1) for m in convs)
    assert net(torch.rand(1, 3, 16, 16)).shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match="padding"):
        SkipConfig(padding="circular")
