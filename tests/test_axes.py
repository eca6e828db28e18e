"""Stacks, time-lapses, channels and volumes: axes, the 3D networks, the API and the CLI.

Tiny stacks (a few 32×32 slices) and few steps keep this file to well under a minute.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from skimage.filters import gaussian

from conftest import psnr
from napari_dip import denoise, inpaint, super_resolve
from napari_dip._arrays import pad_reflect
from napari_dip._axes import axes_from_labels, check_axes, stack_layout
from napari_dip.cli import main
from napari_dip.engine import (
    DecoderConfig,
    Downsample,
    GaussianUpsample,
    Mask,
    MeanOnlyBatchNorm2d,
    SkipConfig,
    bound_lipschitz,
    get_preset,
)
from napari_dip.io import read_scale
from napari_dip.pipeline.plan import z_levels
from napari_dip.restore import restore_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A 3-scale network: 32×32 slices need no padding to 64×64, so a run takes seconds
SMALL = replace(
    get_preset("fast"),
    name="small",
    network=SkipConfig(down=(8, 16, 16), up=(8, 16, 16), skip=(4, 4, 4)),
)
QUICK = {"stop": "none", "device": "cpu", "precision": "float32", "preset": SMALL}


def blobs_stack(depth: int = 4, size: int = 32, sigma: float = 30.0, seed: int = 0):
    """A smooth uint16 stack (blobs varying slowly along Z) and a noisy copy."""
    rng = np.random.default_rng(seed)
    raw = np.zeros((depth, size, size))
    for _ in range(6):
        z, y, x = rng.integers(0, depth), rng.integers(4, size - 4), rng.integers(4, size - 4)
        raw[z, y, x] = 1.0
    clean = gaussian(raw, sigma=(1.5, 3, 3))
    clean = (100 + 800 * clean / clean.max()).astype(np.float64)
    noisy = np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, None)
    return clean, noisy.astype(np.uint16)


# --- axes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("axes", "shape", "match"),
    [
        ("ZYX", (2, 3), "3 letters"),
        ("ZQX", (2, 3, 4), "unknown letters Q"),
        ("ZZX", (2, 3, 4), "more than once"),
        ("TZX", (2, 3, 4), "must contain Y and X"),
    ],
)
def test_bad_axes_are_named(axes, shape, match):
    with pytest.raises(ValueError, match=match):
        check_axes(axes, shape)
    with pytest.raises(TypeError, match="axes must be a string"):
        check_axes(3, shape)


def test_axes_from_layer_labels_and_rgb():
    assert axes_from_labels(("t", "z", "y", "x"), 4) == "TZYX"
    assert axes_from_labels(("time", "y", "x"), 4, rgb=True) == "TYXC"
    assert axes_from_labels(("-3", "-2", "-1"), 3) == "ZYX"  # napari's default labels
    assert axes_from_labels(None, 5) == "CTZYX"


def test_plan_pieces_and_axes_round_trip():
    plan = stack_layout((2, 3, 4, 5, 6), "TYXCZ", "volume")
    assert plan.core_letters == "YXCZ" and plan.count == 2
    piece = np.random.default_rng(0).random((3, 4, 5, 6))
    engine_order = plan.to_engine(piece)
    assert engine_order.shape == (5, 6, 3, 4)  # (C, Z, Y, X)
    np.testing.assert_array_equal(plan.from_engine(engine_order), piece)
    slices = stack_layout((2, 3, 4, 5), "TZYX", "slices")
    assert slices.count == 6 and list(slices.indices())[1] == (0, 1, slice(None), slice(None))
    with pytest.raises(ValueError, match="needs a Z axis"):
        stack_layout((2, 8, 8), "TYX", "volume")
    with pytest.raises(ValueError, match="unknown mode"):
        stack_layout((2, 8, 8), "ZYX", "3d")


# --- engine: the 3D networks and operators ---------------------------------------------------


def test_z_levels_keep_short_stacks_deep_enough():
    assert [z_levels(d, 5) for d in (2, 5, 8, 10, 20, 64, 1000)] == [0, 0, 1, 1, 2, 4, 5]


@pytest.mark.parametrize(
    "config",
    [
        SkipConfig(down=(4, 8, 8), up=(4, 8, 8), skip=(2, 2, 2), dims=3, z_scales=1),
        SkipConfig(
            down=(4, 8),
            up=(4, 8),
            skip=(2, 2),
            dims=3,
            lipschitz=1.5,
            norm="mean",
            upsample_mode="gaussian",
            upsample_sigma=(0.5, 0.5),
            z_scales=0,
        ),
        DecoderConfig(channels=(8, 8, 8), upsample_sigma=(0.1, 0.3, 0.5), dims=3, z_scales=1),
    ],
    ids=["skip", "skip-lipschitz-gaussian", "decoder"],
)
def test_3d_networks_map_volumes_to_volumes(config):
    shape = (6, 16, 24)
    z = torch.rand(1, 3, *config.input_shape(shape))
    net = config.build(3, 2)
    out = net(z)
    assert out.shape == (1, 2, *shape)
    assert 0 <= float(out.detach().min()) and float(out.detach().max()) <= 1
    assert any(isinstance(m, torch.nn.Conv3d) for m in net.modules())
    out.mean().backward()  # differentiable end to end


def test_3d_configs_check_their_controls():
    assert SkipConfig().dims == 2 and SkipConfig().z_scales is None  # 2D stays the default
    with pytest.raises(ValueError, match="dims must be 2 or 3"):
        SkipConfig(dims=4)
    with pytest.raises(ValueError, match="bicubic upsampling is 2D only"):
        SkipConfig(dims=3, upsample_mode="bicubic")
    with pytest.raises(ValueError, match="z_scales is only used with dims=3"):
        SkipConfig(z_scales=1)
    with pytest.raises(ValueError, match="multiples of 2 × 4 × 4"):
        SkipConfig(down=(4, 4), up=(4, 4), skip=(1, 1), dims=3, z_scales=1).input_shape((3, 8, 8))


def test_3d_layers_keep_constants_and_bounds():
    x = torch.full((1, 2, 3, 4, 5), 0.7)
    for upsample_z in (True, False):
        y = GaussianUpsample(0.5, dims=3, upsample_z=upsample_z)(x)
        assert y.shape == (1, 2, 6 if upsample_z else 3, 8, 10)
        torch.testing.assert_close(y, torch.full_like(y, 0.7))
    norm = MeanOnlyBatchNorm2d(2)
    v = torch.randn(2, 2, 3, 4, 5) + 5
    assert norm(v).mean(dim=(0, 2, 3, 4)).abs().max() < 1e-5
    conv = torch.nn.Conv3d(4, 8, 3)
    with torch.no_grad():
        conv.weight.mul_(50)
    bound_lipschitz(torch.nn.Sequential(conv), 1.2)
    for _ in range(30):
        weight = conv.weight  # each access does a power iteration in training mode
    assert torch.linalg.matrix_norm(weight.flatten(1), ord=2) <= 1.2 * 1.01


def test_operators_accept_volumes():
    x = torch.rand(1, 2, 3, 16, 16)
    down = Downsample(4)(x)
    assert down.shape == (1, 2, 3, 4, 4)  # Z untouched
    torch.testing.assert_close(down[:, :, 1], Downsample(4)(x[:, :, 1]))  # slice by slice
    known = (torch.rand(1, 1, 3, 16, 16) > 0.5).float()
    torch.testing.assert_close(Mask(known)(x), x * known)


def test_pad_reflect_pads_z_for_volumes():
    volume = np.random.default_rng(0).random((2, 5, 13, 17)).astype(np.float32)
    padded, offsets = pad_reflect(volume, 8, 16, 2, 4)
    assert padded.shape == (2, 6, 16, 24) and offsets == (0, 1, 3)
    np.testing.assert_array_equal(padded[:, 0:5, 1:14, 3:20], volume)
    assert pad_reflect(volume[:, 0], 8, 16)[1] == (1, 3)  # 2D unchanged


# --- API -------------------------------------------------------------------------------------


def test_uint16_stack_round_trips_and_cold_slices_match_one_by_one():
    _, noisy = blobs_stack(depth=3)
    before = noisy.copy()
    out = denoise(noisy, axes="ZYX", steps=20, warm_start=False, **QUICK)
    assert out.shape == noisy.shape and out.dtype == np.uint16
    np.testing.assert_array_equal(noisy, before)  # the input is not modified
    alone = denoise(noisy[1], steps=20, **QUICK)
    np.testing.assert_array_equal(out[1], alone)  # seeded: identical to one by one


@pytest.mark.parametrize("mode", ["slices", "volume"])
def test_both_modes_restore_a_noisy_stack(mode):
    clean, noisy = blobs_stack(depth=4, sigma=60)
    out = denoise(noisy, axes="ZYX", mode=mode, steps=80, **QUICK)
    gain = psnr(clean, out, 1000) - psnr(clean, noisy, 1000)
    assert gain > 3, f"{mode}: only {gain:.2f} dB"


def test_channels_time_and_volume_shapes():
    rng = np.random.default_rng(0)
    tzyxc = rng.integers(0, 255, (2, 3, 16, 16, 3)).astype(np.uint8)
    out = denoise(tzyxc, axes="TZYXC", mode="volume", steps=2, warm_start=False, **QUICK)
    assert out.shape == tzyxc.shape and out.dtype == np.uint8
    # each frame is a ZYXC volume of its own: cold, the same as restoring that frame alone
    alone = denoise(tzyxc[1], axes="ZYXC", mode="volume", steps=2, **QUICK)
    np.testing.assert_array_equal(out[1], alone)
    czyx = rng.random((2, 3, 16, 16)).astype(np.float32)
    sr = super_resolve(czyx, 2, axes="CZYX", mode="volume", steps=2, **QUICK)
    assert sr.shape == (2, 3, 32, 32) and sr.dtype == np.float32  # Y and X only
    holes = np.zeros((16, 16), bool)
    holes[4:6] = True
    filled = inpaint(czyx, holes, axes="CZYX", steps=2, warm_start=False, **QUICK)  # one YX mask
    assert filled.shape == czyx.shape
    # every Z slice (with its channels) is inpainted with that mask: what inpainting it alone
    # gives, not what denoising it (the mask ignored) gives
    one = {"channel_axis": 0, "steps": 2, **QUICK}
    np.testing.assert_array_equal(filled[:, 2], inpaint(czyx[:, 2], holes, **one))
    assert not np.array_equal(filled[:, 2], denoise(czyx[:, 2], **one))
    with pytest.raises(ValueError, match="mask shape"):
        inpaint(czyx, holes[:8], axes="CZYX", steps=2, **QUICK)
    with pytest.raises(ValueError, match="either axes or channel_axis"):
        denoise(czyx, axes="CZYX", channel_axis=0)
    with pytest.raises(ValueError, match="sharpness stop rule is 2D"):
        denoise(czyx, axes="CZYX", mode="volume", stop="sharpness")


def test_stop_keeps_finished_slices_and_the_current_best():
    _, noisy = blobs_stack(depth=3)
    seen = []
    stop_now = [False]
    snaps = restore_steps(
        noisy, axes="ZYX", steps=20, update_every=5, should_stop=lambda: stop_now[0], **QUICK
    )
    for snap in snaps:
        seen.append(snap)
        stop_now[0] = snap.part == 1 and snap.step >= 30
    last = seen[-1]
    assert last.stop_reason == "stopped on request" and last.part == 1 and last.parts == 3
    assert seen[0].total_steps == 60 and last.step < 40
    result = last.result()
    np.testing.assert_array_equal(result[0], denoise(noisy[0], steps=20, **QUICK))
    np.testing.assert_array_equal(result[1], last.piece_result())
    np.testing.assert_array_equal(result[2], noisy[2])  # not reached: kept as it was


def test_constant_slices_are_kept_wherever_they_are():
    _, noisy = blobs_stack(depth=3)
    stack = noisy.copy()
    stack[0] = 0  # an empty first frame must not fail the whole stack
    stack[2] = 7
    snaps = list(restore_steps(stack, axes="ZYX", steps=20, update_every=20, **QUICK))
    out = snaps[-1].result()
    np.testing.assert_array_equal(out[0], stack[0])
    np.testing.assert_array_equal(out[2], stack[2])
    np.testing.assert_array_equal(out[1], denoise(noisy[1], steps=20, **QUICK))
    reasons = snaps[-1].reasons
    assert "slice 0: not restored" in reasons[0] and "constant" in reasons[0]
    assert "slice 2: not restored" in reasons[-1]
    with pytest.raises(ValueError, match="every slice of the image is constant"):
        denoise(np.zeros((2, 16, 16), np.float32), axes="ZYX", steps=2, **QUICK)


class Lazy:
    """An array-like that reads on indexing (like dask or zarr) and records every read."""

    def __init__(self, array: np.ndarray):
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim
        self.reads: list[tuple[int, ...]] = []

    def __getitem__(self, index):
        part = self.array[index]
        self.reads.append(part.shape)
        return part


def test_a_lazy_stack_is_read_one_slice_at_a_time():
    _, noisy = blobs_stack(depth=3)
    lazy = Lazy(noisy)
    out = denoise(lazy, axes="ZYX", steps=2, **QUICK)
    np.testing.assert_array_equal(out, denoise(noisy, axes="ZYX", steps=2, **QUICK))
    assert lazy.reads and all(shape == noisy.shape[1:] for shape in lazy.reads)


# --- CLI -------------------------------------------------------------------------------------


def test_cli_keeps_axes_dtype_and_pixel_size_of_an_imagej_stack(tmp_path: Path):
    _, noisy = blobs_stack(depth=3)
    source = tmp_path / "stack.tif"
    tifffile.imwrite(
        source,
        noisy,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "ZYX", "spacing": 1.5, "unit": "um"},
    )
    run = ["--steps", "2", "--stop", "none", "-q", "--device", "cpu", "--precision", "float32"]
    api = {"steps": 2, "stop": "none", "device": "cpu", "precision": "float32"}
    volume, slices = tmp_path / "volume.tif", tmp_path / "slices.tif"
    assert main(["denoise", str(source), "-o", str(volume), "--mode", "volume", "--axes", "zyx",
                 *run]) == 0  # fmt: skip
    assert main(["denoise", str(source), "-o", str(slices), *run]) == 0  # the ImageJ axes
    for output, mode in ((volume, "volume"), (slices, "slices")):
        with tifffile.TiffFile(output) as tif:
            result, axes = tif.asarray(), tif.series[0].axes
        assert result.dtype == np.uint16 and axes == "ZYX"
        assert read_scale(output) == pytest.approx({"X": 0.2, "Y": 0.2, "Z": 1.5, "unit": "um"})
        # the mode asked for is the one that ran: the API's result for it, bit for bit
        np.testing.assert_array_equal(result, denoise(noisy, axes="ZYX", mode=mode, **api))
    assert not np.array_equal(tifffile.imread(volume), tifffile.imread(slices))
    big = tmp_path / "big.tif"
    assert main(["super-resolve", str(source), "--factor", "2", "--axes", "ZYX", "-o", str(big),
                 *run, "--steps", "1"]) == 0  # fmt: skip
    expected = super_resolve(noisy, 2, axes="ZYX", **(api | {"steps": 1}))
    np.testing.assert_array_equal(tifffile.imread(big), expected)
    assert expected.shape == (3, 64, 64)
    assert read_scale(big) == pytest.approx({"X": 0.1, "Y": 0.1, "Z": 1.5, "unit": "um"})
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, noisy, photometric="minisblack")  # no axes: they must be given
    assert main(["denoise", str(plain), "-q"]) == 1
