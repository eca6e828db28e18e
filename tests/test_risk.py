"""Risk without ground truth: SURE of a lock-step pair, self-validation's held-out pixels,
ensembles and their spread. Seeded, small, fast."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage

import napari_dip
from napari_dip import engine, samples
from napari_dip.pipeline.fitting import turn, unturn

RUN = {"device": "cpu", "tile": None}


def _smooth_image(size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    return 0.3 + 0.4 * np.sin(6 * yy) * np.cos(4 * xx)


@pytest.mark.parametrize("noise", ["gaussian", "poisson"])
def test_sure_of_a_pair_is_unbiased_for_a_known_smoother(noise):
    """The rule's SURE of a linear smoother h = G * y, probed by the pair G * (y ± δ), against
    the true mean squared error: the mean over seeds agrees within 5 % (Poisson: against the
    expected counts, first-order SURE with each pixel's variance from its count), and the
    spread the rule states for itself is the spread over seeds (within the sampling error of
    16 seeds), so ± 2 of it hold the truth nearly always."""
    clean = samples.grey_crop("camera", 128) / 255.0  # edges: the smoother's error is its own
    scale = 200.0  # photons per unit (Poisson)
    if noise == "gaussian":
        model = engine.Gaussian(sigma=0.05)  # known: the estimator is tested, not the level
    else:
        model = engine.Poisson(scale=scale)
    estimates, truths, stds = [], [], []
    for seed in range(16):
        rng = np.random.default_rng(seed)
        if noise == "gaussian":
            y = clean + rng.normal(0, 0.05, clean.shape)
            std = np.full_like(clean, 0.05)
        else:
            y = rng.poisson(clean * scale + 1) / scale
            std = np.sqrt(np.maximum(y, 0) / scale)
        rule = engine.Sure(scale=0.3)
        delta = 0.3 * std * rng.normal(size=clean.shape)
        pair = np.stack([y + delta, y - delta])[:, None].astype(np.float32)
        problem = SimpleNamespace(
            y=torch.from_numpy(pair),
            operator=engine.Identity(),
            region=(slice(None), slice(None)),
            noise=model,
        )
        rule.reset()
        rule.prepare(problem)
        members = torch.from_numpy(
            np.stack([ndimage.gaussian_filter(p[0], 1.0) for p in pair])[:, None]
        ).float()
        h = members.mean(0)
        rule.observe(1, h, h, members=members)
        rule.flush()
        estimates.append(rule.estimated_mse)
        stds.append(rule.estimated_mse_std)
        truth = clean if noise == "gaussian" else clean + 1 / scale
        truths.append(float(np.mean((h[0].numpy() - truth) ** 2)))
    assert np.mean(estimates) == pytest.approx(np.mean(truths), rel=0.05)
    errors = np.subtract(estimates, truths)
    assert 0.6 < np.std(errors) / np.mean(stds) < 1.6, (np.std(errors), np.mean(stds))
    assert np.mean(np.abs(errors) <= 2 * np.array(stds)) >= 14 / 16


def test_the_sure_rule_stops_at_the_risk_minimum_of_a_synthetic_run():
    """Members that first smooth less and less, then copy the noise: SURE follows the true
    error, and the rule keeps the step where both are lowest."""
    clean = samples.grey_crop("camera", 96) / 255.0
    rng = np.random.default_rng(0)
    y = clean + rng.normal(0, 0.05, clean.shape)
    delta = 0.3 * 0.05 * rng.normal(size=clean.shape)
    pair = np.stack([y + delta, y - delta])[:, None].astype(np.float32)
    problem = SimpleNamespace(
        y=torch.from_numpy(pair),
        operator=engine.Identity(),
        region=(slice(None), slice(None)),
        noise=engine.Gaussian(sigma=0.05),
    )
    rule = engine.Sure(patience=40, scale=0.3, check_every=10)
    rule.reset()
    rule.prepare(problem)
    widths = np.concatenate([np.linspace(6, 0.05, 100), np.full(100, 0.05)])
    truths = []
    for step, width in enumerate(widths, start=1):
        members = torch.from_numpy(
            np.stack([ndimage.gaussian_filter(p[0], width) for p in pair])[:, None]
        ).float()
        h = members.mean(0)
        truths.append(float(np.mean((h[0].numpy() - clean) ** 2)))
        rule.observe(step, h, h, members=members)
        if step % 10 == 0 and rule.check(step):
            break
    best = int(np.argmin(truths)) + 1
    assert rule.triggered and abs(rule.best_step - best) <= 8, (rule.best_step, best)
    assert rule.estimated_mse == pytest.approx(min(truths), rel=0.15)


def test_a_sure_run_stops_by_itself():
    noisy, _ = samples.noisy(sigma=25, size=32, seed=2, image="moon")  # unclipped noise
    last = list(napari_dip.restore_steps(noisy, stop="sure", steps=900, update_every=100, **RUN))[
        -1
    ]
    assert last.stop_reason.startswith("SURE: lowest at step") and last.step < 900
    assert last.estimated_psnr is not None and 15 < last.estimated_psnr < 45
    with pytest.raises(ValueError, match="sure"):
        napari_dip.restore_steps(noisy, task="super_resolve", factor=2, stop="sure")


def test_held_out_pixels_stay_out_of_the_fit():
    """With a holdout, the loss does not depend on the held-out pixels at all; their error
    is what validation measures."""
    y = torch.rand(1, 1, 16, 16)
    held = torch.zeros(1, 1, 16, 16)
    held[..., 3, 4] = 1
    problem = engine.Problem(y, holdout=held)
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    problem.loss(x).backward()
    assert x.grad[0, 0, 3, 4] == 0 and x.grad.abs().sum() > 0
    data, squared = problem.validation(x.detach())
    assert float(data) == pytest.approx(float(squared))  # Gaussian: the data term is it
    assert float(squared) == pytest.approx(float((x.detach()[0, 0, 3, 4] - y[0, 0, 3, 4]) ** 2))


def test_self_validation_stops_every_task_by_itself():
    broken, mask, _ = samples.damaged(fraction=0.5, size=32, seed=0)
    low, _ = samples.low_resolution(factor=2, size=32)
    rule = engine.SelfValidation(patience=100, share=0.1)
    for kwargs in (
        {"task": "denoise", "image": samples.noisy(sigma=25, size=32)[0]},
        {"task": "inpaint", "image": broken, "mask": mask},
        {"task": "super_resolve", "image": low, "factor": 2},
    ):
        image = kwargs.pop("image")
        last = list(
            napari_dip.restore_steps(
                image, stop=rule, steps=4000, update_every=100, **RUN, **kwargs
            )
        )[-1]
        assert last.stop_reason.startswith("self-validation"), (kwargs, last.stop_reason)
        assert last.step < 4000


@pytest.mark.parametrize("k", range(8))
def test_the_eight_turns_are_undone(k):
    a = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    turned = turn(a, k)
    assert turned.shape[-2:] == ((5, 3) if k % 2 else (3, 5))
    np.testing.assert_array_equal(unturn(turned, k), a)


def test_an_ensemble_averages_its_members_and_reports_their_spread():
    noisy, clean = samples.noisy(sigma=25, size=32, seed=1)
    kw = {"steps": 40, "stop": "none", **RUN}
    members = [
        list(napari_dip.restore_steps(noisy, **kw, ensemble=2))[-1],
    ]
    last = members[0]
    assert last.pieces == 2
    single = napari_dip.denoise(noisy, **kw)
    assert not np.array_equal(last.result(), single)
    spread = last.uncertainty()
    assert spread.shape == noisy.shape and spread.dtype == np.float32
    assert spread.min() >= 0 and spread.mean() > 0
    result, sigma = napari_dip.denoise(noisy, uncertainty=True, **kw), None
    assert isinstance(result, tuple)
    result, sigma = result
    assert result.shape == noisy.shape and sigma.shape == noisy.shape
    error = np.abs(result.astype(float) - clean)
    # the spread is larger where the error is: a positive rank correlation
    from scipy.stats import spearmanr

    assert spearmanr(sigma.ravel(), error.ravel()).statistic > 0.1


def test_no_psnr_estimate_for_an_image_clipped_at_its_range():
    """Noise clipped at the type's limits is not the noise SURE and the held-out pixels
    assume: their estimate would be too optimistic, so none is given. Unclipped, it is."""
    rng = np.random.default_rng(3)
    clean = np.full((32, 32), 128.0)
    clean[:, :8] = 6.0  # a dark band: σ = 25 noise clips a share of it at 0
    noise = rng.normal(0.0, 25.0, clean.shape)
    clipped = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
    unclipped = (clean + noise).astype(np.float32)  # the same noise, not clipped
    options = {"stop": "validation", "steps": 30, "update_every": 10, "noise": "gaussian", **RUN}
    last = list(napari_dip.restore_steps(unclipped, **options))[-1]
    assert last.estimated_psnr is not None
    assert np.mean(clipped == 0) > 0.05
    last = list(napari_dip.restore_steps(clipped, **options))[-1]
    assert last.estimated_psnr is None


def test_no_psnr_estimate_when_one_tile_of_the_image_is_clipped():
    """An estimate made from the unclipped tiles alone would pass for the whole image's:
    a clipped tile withholds it for the image. With no tile clipped, it is given."""
    from skimage import data

    rng = np.random.default_rng(4)
    clean = 50.0 + 0.6 * data.camera()[100:212, 200:312]  # 50…203: σ = 25 seldom clips
    noise = rng.normal(0.0, 25.0, clean.shape)
    dark = clean.copy()
    dark[:, :24] = 6.0  # a dark band in the left tiles: σ = 25 noise clips it at 0
    options = {"stop": "validation", "steps": 20, "update_every": 10, "noise": "gaussian"}
    options |= {"device": "cpu", "tile": 64, "tile_overlap": 16}
    for image, estimated in ((clean, True), (dark, False)):
        observed = np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)
        last = list(napari_dip.restore_steps(observed, **options))[-1]
        assert last.tiles == 4
        assert (last.estimated_psnr is not None) == estimated


def test_the_uncertainty_map_is_the_members_spread_times_the_tasks_factor(monkeypatch):
    """σ̂ is calibrated per task: the raw spread scaled by the task's factor (the same fit)."""
    from napari_dip.pipeline import assembly

    noisy, _ = samples.noisy(sigma=25, size=32, seed=1)
    kw = {"steps": 10, "stop": "none", "ensemble": 2, "uncertainty": True, **RUN}
    factor = assembly.UNCERTAINTY_FACTORS["denoise"]
    assert factor > 1  # the raw spread covers too little
    _, calibrated = napari_dip.denoise(noisy, **kw)
    monkeypatch.setitem(assembly.UNCERTAINTY_FACTORS, "denoise", 1.0)
    _, raw = napari_dip.denoise(noisy, **kw)
    assert raw.mean() > 0
    np.testing.assert_allclose(calibrated, factor * raw, rtol=1e-4, atol=1e-4)
