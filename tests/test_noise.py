"""Noise models: engine NLLs against scipy, the camera-parameter fit, the checks of bad
combinations, the photon-limited sample, and the Poisson loss against MSE on photon counts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from scipy import stats

import napari_dip
from conftest import psnr
from napari_dip import engine, samples
from napari_dip._arrays import prepare_image
from napari_dip._noise import NoiseParams, estimate_noise, noise_terms
from napari_dip.cli import main

# --- engine ---------------------------------------------------------------------------------


def test_gaussian_is_the_old_squared_error_bit_for_bit() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(1, 2, 9, 7, generator=gen), torch.rand(1, 2, 9, 7, generator=gen)
    problem = engine.Problem(y)
    assert isinstance(problem.noise, engine.Gaussian)
    assert torch.equal(problem.loss(x), torch.mean((x - y) ** 2))
    assert problem.to(torch.device("cpu")).noise is problem.noise


def test_poisson_nll_and_deviance_match_scipy() -> None:
    scale, offset = 40.0, 3.0
    k = torch.tensor([0.0, 1.0, 2.0, 5.0, 17.0, 43.0], dtype=torch.float64)
    x = torch.tensor([0.0, 0.01, 0.2, 0.05, 0.5, 1.0], dtype=torch.float64, requires_grad=True)
    y = (k - offset) / scale  # the normalised observation of those counts
    model = engine.Poisson(scale, offset)
    lam = (offset + scale * x).detach().numpy()
    expected_nll = -stats.poisson.logpmf(k.numpy(), lam).mean()
    assert float(model.nll(x, y).detach()) == pytest.approx(expected_nll, rel=1e-10)
    saturated = -stats.poisson.logpmf(k.numpy(), k.numpy()).mean()  # 0 log 0 = 0 at k = 0
    loss = model(x, y)
    assert float(loss.detach()) == pytest.approx(expected_nll - saturated, rel=1e-10)
    loss.backward()  # the gradient is the NLL's: scale · (1 − k / λ) / N
    grad = scale * (1 - k.numpy() / lam) / len(lam)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-10)
    # a perfect fit costs nothing (but the rate floor, 1e-6, where k = 0)
    assert float(model(y, y)) == pytest.approx(0.0, abs=1e-6)


def test_poisson_rate_floor_keeps_log_and_gradient_finite() -> None:
    model = engine.Poisson(scale=10.0, offset=0.0)
    x = torch.tensor([0.0, -0.5, 0.3], requires_grad=True)  # rates 0, < 0 (SR overshoot), 3
    y = torch.tensor([0.2, 0.0, -0.1])  # counts 2, 0, and -1 (below the offset: taken as 0)
    loss = model(x, y)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and torch.isfinite(x.grad).all()
    assert float(model.counts(y).min()) == 0.0


def test_poisson_gaussian_is_a_shifted_poisson() -> None:
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 1, 6, 6, generator=gen), torch.rand(1, 1, 6, 6, generator=gen)
    pg = engine.PoissonGaussian(scale=30.0, offset=-2.0, read_var=4.0)
    assert torch.allclose(pg(x, y), engine.Poisson(30.0, 2.0)(x, y))
    assert torch.equal(engine.PoissonGaussian(30.0, 1.0)(x, y), engine.Poisson(30.0, 1.0)(x, y))
    k = 2.0 + 30.0 * y  # shifted counts k + σ²: its NLL is Poisson's at rate λ + σ²
    lam = 2.0 + 30.0 * x
    expected = -stats.poisson.logpmf(k.numpy().round(), lam.numpy()).mean()
    y_int = (k.round() - 2.0) / 30.0
    assert float(pg.nll(x, y_int)) == pytest.approx(expected, rel=1e-5)


def test_make_noise_model_and_bad_parameters() -> None:
    assert isinstance(engine.make_noise_model("gaussian"), engine.Gaussian)
    model = engine.make_noise_model("poisson-gaussian", scale=2.0, offset=1.0, read_var=3.0)
    assert isinstance(model, engine.PoissonGaussian) and model.read_var == 3.0
    assert engine.make_noise_model(model) is model
    with pytest.raises(ValueError, match="photon scale"):
        engine.make_noise_model("poisson")
    with pytest.raises(ValueError, match="unknown noise model"):
        engine.make_noise_model("laplace")
    with pytest.raises(ValueError, match="scale"):
        engine.Poisson(0.0)
    with pytest.raises(ValueError, match="read_var"):
        engine.PoissonGaussian(1.0, read_var=-1.0)


# --- camera parameters ----------------------------------------------------------------------


def test_estimate_noise_recovers_gain_and_offset() -> None:
    noisy, _ = samples.photon_limited((4, 96, 96), photons=60, gain=2.5, offset=80.0, seed=3)
    found = estimate_noise(noisy)
    assert found.gain == pytest.approx(2.5, rel=0.15)
    assert found.offset == pytest.approx(80.0, abs=3.0)
    fixed = estimate_noise(noisy, gain=2.5)  # a given gain is kept; the offset refitted
    assert fixed.gain == 2.5 and fixed.offset == pytest.approx(80.0, abs=3.0)
    assert estimate_noise(noisy, gain=2.0, offset=7.0, read_noise=0.5) == NoiseParams(2.0, 7.0, 0.5)
    assert estimate_noise(noisy, gain=2.5, offset=80.0).read_noise < 2.0  # no read noise here


def test_estimate_noise_with_read_noise() -> None:
    rng = np.random.default_rng(5)
    _, clean = samples.photon_limited((4, 96, 96), photons=80, gain=1.0, offset=0.0, seed=4)
    photons = rng.poisson(clean)  # gain 2, offset 100, read noise 3
    image = 100.0 + 2.0 * photons + rng.normal(0.0, 3.0, clean.shape)
    found = estimate_noise(image, offset=100.0)
    assert found.gain == pytest.approx(2.0, rel=0.15)
    assert found.read_noise == pytest.approx(3.0, abs=1.5)
    # without the offset only read_noise² − gain·offset is identifiable: that is kept
    free = estimate_noise(image)
    b = free.read_noise**2 - free.gain * free.offset
    assert b == pytest.approx(9.0 - 2.0 * 100.0, abs=25.0)


def test_estimate_noise_refuses_signal_independent_noise() -> None:
    rng = np.random.default_rng(0)
    flat = 50 + rng.normal(0, 2, (96, 96)) + np.linspace(0, 40, 96)[None]
    with pytest.raises(ValueError, match="could not estimate the gain"):
        estimate_noise(flat)


def test_noise_terms_map_the_normalised_observation_to_photon_counts() -> None:
    noisy, _ = samples.photon_limited((40, 48), photons=10, gain=2.0, offset=100.0, seed=0)
    unit, layout = prepare_image(noisy)
    terms, params = noise_terms("poisson", noisy[None], layout.lo, layout.hi, gain=2.0, offset=100)
    assert params == NoiseParams(2.0, 100.0, 0.0)
    counts = engine.Poisson(terms["scale"], terms["offset"]).counts(torch.from_numpy(unit))
    np.testing.assert_allclose(counts[0].numpy(), (noisy - 100.0) / 2.0, atol=1e-4)


@pytest.mark.parametrize(
    ("noise", "kwargs", "match"),
    [
        ("gaussian", {"gain": 2.0}, "gain only apply to noise='poisson'"),
        ("poisson", {"read_noise": 1.0}, "read_noise needs noise='poisson-gaussian'"),
        ("poisson", {"gain": 1.0, "offset": 0.0}, "negative photon counts"),
        ("poisson", {"gain": -1.0}, "gain must be positive"),
        ("laplace", {}, "unknown noise model"),
    ],
)
def test_bad_noise_combinations_are_named(noise, kwargs, match) -> None:
    image = np.linspace(-20.0, 80.0, 64 * 64).reshape(64, 64)  # negative data
    with pytest.raises(ValueError, match=match):
        napari_dip.denoise(image, noise=noise, steps=1, **kwargs)


def test_gain_must_be_a_number() -> None:
    with pytest.raises(TypeError, match="gain must be a number"):
        napari_dip.denoise(np.eye(8), noise="poisson", gain="2", steps=1)


# --- sample ---------------------------------------------------------------------------------


def test_photon_limited_sample_is_seeded_poisson_uint16() -> None:
    noisy, clean = samples.photon_limited((4, 64, 64), photons=20, gain=1.0, offset=100.0)
    again, _ = samples.photon_limited((4, 64, 64), photons=20, gain=1.0, offset=100.0)
    np.testing.assert_array_equal(noisy, again)
    assert noisy.dtype == np.uint16 and noisy.shape == (4, 64, 64)
    assert clean.dtype == np.float32 and clean.shape == noisy.shape
    counts, expected = noisy - 100.0, clean - 100.0
    assert expected.min() == pytest.approx(2.0, abs=0.05)  # background 2 … 4, signal 20
    assert 22.0 - 1e-4 <= expected.max() <= 24.0 + 1e-4
    assert counts.mean() == pytest.approx(expected.mean(), rel=0.05)
    dim = expected < 5  # Poisson: variance = mean
    assert (counts[dim] - expected[dim]).var() == pytest.approx(expected[dim].mean(), rel=0.1)
    assert samples.photon_limited((32, 40))[0].shape == (32, 40)


# --- faces ----------------------------------------------------------------------------------


def test_cli_noise_flags(tmp_path: Path, capsys, one_torch_thread) -> None:
    noisy, _ = samples.photon_limited((40, 56), photons=20, seed=0)
    source, out = tmp_path / "counts.tif", tmp_path / "out.tif"
    tifffile.imwrite(source, noisy)
    fast = ["--steps", "4", "--update-every", "2", "--stop", "none", "--device", "cpu", "-q"]
    argv = ["denoise", str(source), "-o", str(out), "--noise", "poisson", *fast]
    assert main([*argv, "--gain", "1", "--offset", "100"]) == 0
    result = tifffile.imread(out)
    assert result.dtype == np.uint16 and result.shape == noisy.shape
    assert main([*argv, "--normalize", "0.1,99.9"]) == 0  # estimated camera, percentiles
    bad = ["denoise", str(source), "-o", str(tmp_path / "bad.tif"), "--noise", "gaussian"]
    bad += ["--gain", "2", *fast]
    assert main(bad) == 1
    assert "only apply to noise='poisson'" in capsys.readouterr().err
    assert not (tmp_path / "bad.tif").exists()


def test_poisson_loss_at_least_as_good_as_mse_on_photon_counts(one_torch_thread) -> None:
    """A small seeded case of benchmarks/noise_models.py: the same slice, seed and steps."""
    noisy, clean = samples.photon_limited((48, 48), photons=5, gain=1.0, offset=100.0, seed=0)
    span = float(clean.max() - clean.min())
    common = {"stop": "none", "steps": 150, "device": "cpu", "seed": 0, "precision": "float32"}
    mse = napari_dip.denoise(noisy, noise="gaussian", **common)
    poisson = napari_dip.denoise(noisy, noise="poisson", gain=1.0, offset=100.0, **common)
    before = psnr(clean, noisy, span)
    after_mse, after_poisson = psnr(clean, mse, span), psnr(clean, poisson, span)
    assert after_mse > before + 3 and after_poisson > before + 3
    # measured here: 11.26 dB noisy, 21.84 MSE, 22.01 Poisson
    assert after_poisson >= after_mse - 0.1, (before, after_mse, after_poisson)


def test_the_camera_parameters_used_are_reported(tmp_path: Path, capsys, one_torch_thread):
    noisy, _ = samples.photon_limited((2, 64, 64), photons=60, gain=2.5, offset=80.0, seed=3)
    quick = {"steps": 2, "update_every": 2, "stop": "none", "device": "cpu"}
    given = {"noise": "poisson-gaussian", "gain": 2.5, "offset": 80.0, "read_noise": 0.5}
    for options in ({}, {"axes": "ZYX"}, {"tile": 32}):  # one image, a stack, tiles
        image = noisy if "axes" in options else noisy[0]
        last = list(napari_dip.restore_steps(image, **given, **options, **quick))[-1]
        assert last.camera == NoiseParams(2.5, 80.0, 0.5), options
    estimated = list(napari_dip.restore_steps(noisy[0], noise="poisson", **quick))[-1].camera
    assert estimated.gain == pytest.approx(2.5, rel=0.3)
    gaussian = napari_dip.restore_steps(noisy[0], noise="gaussian", **quick)
    assert list(gaussian)[-1].camera is None

    source = tmp_path / "counts.tif"
    tifffile.imwrite(source, noisy[0])
    argv = ["denoise", str(source), "-o", str(tmp_path / "out.tif"), "--noise", "poisson"]
    assert main([*argv, "--steps", "2", "--stop", "none", "--device", "cpu"]) == 0
    assert "camera: gain " in capsys.readouterr().err  # estimated, and said


# --- napari ---------------------------------------------------------------------------------


def test_photon_limited_sample_opens_in_viewer(make_napari_viewer_proxy) -> None:
    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-dip", "photon_limited")
    noisy, clean = viewer.layers["cells (photon-limited)"], viewer.layers["cells (clean)"]
    assert noisy.data.shape == clean.data.shape == (16, 128, 128)
    assert noisy.data.dtype == np.uint16 and not clean.visible
    assert noisy.metadata == {"gain": 1.0, "offset": 100.0, "noise": "poisson"}


def test_auto_noise_picks_the_model_the_image_shows(one_torch_thread) -> None:
    """noise='auto' (the default): photon counts get the Poisson–Gaussian model with the
    camera estimated, a σ-noised image the Gaussian one; the snapshot says which."""
    stack, _ = samples.photon_limited((2, 64, 64), photons=20, seed=0)
    noisy, _ = samples.noisy(sigma=25, size=64)
    run = {"steps": 2, "stop": "none", "device": "cpu"}
    photon = list(napari_dip.restore_steps(stack, axes="ZYX", **run))[-1]
    grey = list(napari_dip.restore_steps(noisy, **run))[-1]
    assert photon.noise == "poisson-gaussian" and photon.camera is not None
    assert grey.noise == "gaussian" and grey.camera is None
