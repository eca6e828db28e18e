"""Fusion with a classical denoiser (option ``fuse``): the SURE-weighted blend, the classical
estimates (photon counts through the Anscombe transform), the option's checks, and runs."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage

import napari_dip
from napari_dip import engine, samples
from napari_dip.pipeline.fusion import classical_estimate, fuse, fuse_piece

RUN = {"device": "cpu", "tile": None}


def _psnr(x: np.ndarray, clean: np.ndarray, peak: float = 1.0) -> float:
    return float(10 * np.log10(peak**2 / np.mean((np.asarray(x, np.float64) - clean) ** 2)))


def test_the_blend_weight_and_risk_match_the_truth_for_two_known_smoothers():
    """Two linear smoothers of known divergence (a Gaussian filter's centre tap times σ²): the
    weight SURE picks is within 0.05 of the one the clean image would pick (over a grid),
    and the blend's SURE, averaged over seeds, within 5 % of its true squared error."""
    clean = samples.grey_crop("camera", 128) / 255.0
    sigma = 0.08
    taps = {}
    for width in (0.5, 2.0):
        impulse = np.zeros((33, 33))
        impulse[16, 16] = 1
        taps[width] = ndimage.gaussian_filter(impulse, width, mode="reflect")[16, 16]
    grid = np.linspace(0, 1, 101)
    estimated, true = [], []
    for seed in range(8):
        y = clean + np.random.default_rng(seed).normal(0, sigma, clean.shape)
        h, g = (ndimage.gaussian_filter(y, w, mode="reflect") for w in (0.5, 2.0))
        f = fuse(y, h, g, sigma**2 * taps[0.5], sigma**2 * taps[2.0], sigma**2)
        errors = [np.mean((g + w * (h - g) - clean) ** 2) for w in grid]
        assert abs(f.weight - grid[int(np.argmin(errors))]) < 0.05
        assert 0 < f.weight < 1  # a real blend: each smoother errs where the other does not
        estimated.append(f.mse)
        true.append(np.mean((f.estimate - clean) ** 2))
    assert np.mean(estimated) == pytest.approx(np.mean(true), rel=0.05)


def test_nlmeans_fusion_beats_both_estimates_and_estimates_its_own_error():
    """The Monte-Carlo divergence of NL-means (no closed form): fusing a blurred estimate with
    it is at least as good as the better of the two, and its SURE, averaged over seeds, within
    10 % of the truth (one seed's is within about 20 %)."""
    clean = samples.grey_crop("astronaut", 96) / 255.0
    sigma = 0.1
    impulse = np.zeros((33, 33))
    impulse[16, 16] = 1
    d_h = sigma**2 * ndimage.gaussian_filter(impulse, 1.0, mode="reflect")[16, 16]
    std = np.full(clean.shape, sigma, np.float32)[None]
    estimated, true = [], []
    for seed in range(4):
        y = (clean + np.random.default_rng(seed).normal(0, sigma, clean.shape)).astype(np.float32)
        h = ndimage.gaussian_filter(y, 1.0, mode="reflect")
        f = fuse_piece("nlmeans", y[None], h[None], std, ("gaussian", {}), d_h, sigma**2, 9)
        g = classical_estimate("nlmeans", y[None], ("gaussian", {}), sigma)[0]
        assert _psnr(f.estimate[0], clean) >= max(_psnr(h, clean), _psnr(g, clean)) - 0.02
        estimated.append(f.mse)
        true.append(np.mean((f.estimate[0] - clean) ** 2))
    assert np.mean(estimated) == pytest.approx(np.mean(true), rel=0.1)


def test_photon_counts_are_denoised_through_the_anscombe_transform_without_bias():
    """Counts of 5–35 photons: the classical estimate (GAT, NL-means, exact unbiased inverse)
    keeps the mean intensity within 2 % (the algebraic inverse reads 6 % low here) and beats
    the noisy counts by a wide margin."""
    clean = samples.grey_crop("camera", 96) / 255.0
    scale, offset = 30.0, 5.0  # counts = 5 + 30 · unit
    counts = np.random.default_rng(1).poisson(offset + scale * clean)
    unit = ((counts - offset) / scale).astype(np.float32)[None]
    noise = ("poisson", {"scale": scale, "offset": offset})
    g = classical_estimate("nlmeans", unit, noise, 0.0)[0]
    assert np.mean(g) == pytest.approx(np.mean(clean), rel=0.02)
    assert _psnr(g, clean) > _psnr(unit[0], clean) + 6


def test_sure_rule_keeps_the_divergence_of_its_best_step():
    """The divergence Sure hands a fusion is that of the step it chose, not the latest."""
    rule = engine.Sure(scale=0.3, patience=5, check_every=1)
    y = torch.zeros(2, 1, 1, 8, 8)
    probe = torch.ones(1, 8, 8)
    y[0], y[1] = 0.3 * 0.1 * probe, -0.3 * 0.1 * probe
    problem = SimpleNamespace(
        y=y,
        operator=engine.Identity(),
        region=(slice(None), slice(None)),
        noise=engine.Gaussian(sigma=0.1),
    )
    rule.reset()
    rule.prepare(problem)
    # members that follow the probe by 0.5 (divergence 0.5 · 0.01), then by 1 with a worse fit
    for step, (follow, level) in enumerate([(0.5, 0.0), (1.0, 0.2)], start=1):
        members = torch.stack([level + follow * y[0, 0], level + follow * y[1, 0]])
        mean = members.mean(0)
        rule.observe(step, mean, mean, members=members)
    rule.check(2)
    assert rule.best_step == 1
    assert rule.divergence == pytest.approx(0.5 * 0.1**2, rel=1e-5)
    assert rule.noise_variance == pytest.approx(0.01)


def test_fuse_is_checked_when_the_request_is_made(monkeypatch):
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match="needs stop='sure'"):
        napari_dip.denoise(image, fuse="nlmeans", **RUN)
    with pytest.raises(ValueError, match="unknown fusion 'median'"):
        napari_dip.denoise(image, stop="sure", fuse="median", **RUN)
    mask = np.zeros(image.shape, bool)
    mask[:4] = True
    with pytest.raises(ValueError, match="needs task='denoise'"):
        napari_dip.inpaint(image, mask, stop="sure", fuse="nlmeans", **RUN)
    monkeypatch.setitem(sys.modules, "bm3d", None)  # as if not installed
    with pytest.raises(ImportError, match=r"napari-dip\[bm3d\]"):
        napari_dip.denoise(image, stop="sure", fuse="bm3d", **RUN)


@pytest.fixture(scope="module")
def noisy_crop():
    clean = samples.grey_crop("camera", 64) / 255.0
    noisy = clean + np.random.default_rng(3).normal(0, 25 / 255, clean.shape)
    return noisy.astype(np.float32), clean


def _run(noisy, **options):
    steps = napari_dip.restore_steps(
        noisy, task="denoise", stop="sure", steps=400, seed=0, **{**RUN, **options}
    )
    return list(steps)[-1]


def test_a_fused_run_is_better_than_the_network_alone_and_says_its_weight(noisy_crop):
    """End to end on a seeded crop: the fused result beats the same run unfused, the snapshot
    carries the weight SURE chose, and the input is left as it was."""
    noisy, clean = noisy_crop
    before = noisy.copy()
    plain = _run(noisy)
    fused = _run(noisy, fuse="nlmeans")
    assert plain.fusion_weight is None
    assert 0 <= fused.fusion_weight <= 1
    assert _psnr(fused.result(), clean) > _psnr(plain.result(), clean) + 0.1
    np.testing.assert_array_equal(noisy, before)


def test_tiles_and_ensemble_members_are_fused_each(noisy_crop, monkeypatch):
    """Every tile and every (turned) member is fused; the snapshot's weight is their mean,
    and a tiled, two-member fused run still beats the noisy input by a wide margin."""
    from napari_dip.pipeline import fitting

    weights = []

    def counted(*args, **kwargs):
        fusion = fuse_piece(*args, **kwargs)
        weights.append(fusion.weight)
        return fusion

    monkeypatch.setattr(fitting, "fuse_piece", counted)
    noisy, clean = noisy_crop
    last = _run(noisy, fuse="nlmeans", ensemble=2, tile=48)
    assert last.tiles > 1 and 0 <= last.fusion_weight <= 1
    assert len(weights) == 2 * last.tiles
    assert last.fusion_weight == pytest.approx(np.mean(weights))
    assert _psnr(last.result(), clean) > _psnr(noisy, clean) + 5


def test_bm3d_is_called_one_at_a_time_when_tiles_fuse_side_by_side(noisy_crop, monkeypatch):
    """bm3d's native thread pool aborts the process on concurrent calls: tiles fitted at once
    must fuse one after another. A stand-in ``bm3d`` module (a Gaussian filter) records any
    overlap: two pieces ending at the same moment (a barrier), then two tiles fitted side by
    side, each fused with its estimate."""
    import threading
    import time
    import types

    active, overlaps, calls = [0], [], []
    guard = threading.Lock()

    def fake_bm3d(plane, sigma):
        with guard:
            active[0] += 1
            overlaps.append(active[0] > 1)
        time.sleep(0.05)  # long enough for another tile to arrive
        calls.append(sigma)
        out = ndimage.gaussian_filter(np.asarray(plane, np.float64), 1.0)
        with guard:
            active[0] -= 1
        return out

    monkeypatch.setitem(sys.modules, "bm3d", types.SimpleNamespace(bm3d=fake_bm3d))
    noisy, clean = noisy_crop
    start = threading.Barrier(2)  # two pieces that end at the same moment

    def piece_ends():
        start.wait()
        classical_estimate("bm3d", noisy[None], ("gaussian", {}), 0.1)

    threads = [threading.Thread(target=piece_ends) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2 and not any(overlaps)
    calls.clear()
    last = _run(noisy, fuse="bm3d", tile=48, workers=2)
    assert last.tiles > 1 and len(calls) == 2 * last.tiles  # the estimate and its probe
    assert not any(overlaps)
    assert 0 <= last.fusion_weight <= 1
    assert _psnr(last.result(), clean) > _psnr(noisy, clean) + 5
