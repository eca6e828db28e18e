"""The torch engine: operators, network, prior and the fit generator."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import napari_dip
from napari_dip import engine, samples
from napari_dip.engine import (
    Composition,
    Downsample,
    FitSettings,
    Identity,
    Mask,
    Problem,
    SkipNet,
    build_prior,
    fit,
    get_preset,
    resolve_device,
)


def test_identity_and_mask():
    x = torch.rand(1, 2, 8, 8)
    assert torch.equal(Identity()(x), x)
    known = torch.ones(1, 1, 8, 8)
    known[..., 2:4, 2:4] = 0
    out = Mask(known)(x)
    assert torch.all(out[..., 2:4, 2:4] == 0)
    assert torch.equal(out[..., 5:, 5:], x[..., 5:, 5:])


def test_downsample_is_centre_aligned_and_preserves_constants():
    # A linear ramp sampled at pixel centres: block averages land on block centres.
    ramp = torch.arange(32, dtype=torch.float32).repeat(32, 1)[None, None]
    low = Downsample(4)(ramp)
    assert low.shape == (1, 1, 8, 8)
    # Interior blocks (away from the border clamp) average to the block centre s·j + (s−1)/2.
    centres = torch.arange(8, dtype=torch.float32) * 4 + 1.5
    assert torch.allclose(low[0, 0, 4, 2:-2], centres[2:-2], atol=1e-4)
    flat = torch.full((1, 3, 24, 24), 0.3)
    assert torch.allclose(Downsample(3)(flat), torch.full((1, 3, 8, 8), 0.3), atol=1e-6)


def test_downsample_rejects_bad_factor_and_size():
    for bad in (1, 0, 2.5):
        with pytest.raises(ValueError, match="factor"):
            Downsample(bad)
    with pytest.raises(ValueError, match="multiple"):
        Downsample(2)(torch.rand(1, 1, 9, 8))


def test_composition_applies_in_order():
    known = torch.zeros(1, 1, 4, 4)
    known[..., 0, 0] = 1
    op = Mask(known) @ Downsample(2)  # downsample first, then mask the 4×4 result
    assert isinstance(op, Composition)
    assert op.observed_shape((8, 8)) == (4, 4)
    out = op(torch.ones(1, 1, 8, 8))
    assert out.shape == (1, 1, 4, 4)
    assert out.sum().item() == pytest.approx(1.0)


def test_paper_network_matches_published_size():
    net = SkipNet(32, 3, get_preset("paper").network)
    n_params = sum(p.numel() for p in net.parameters())
    assert 2_100_000 < n_params < 2_300_000  # "about 2.2 M parameters"
    out = net(torch.rand(1, 32, 64, 64))
    assert out.shape == (1, 3, 64, 64)
    assert 0 <= out.min() and out.max() <= 1


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    assert "cpu" in engine.available_devices()
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-9000")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def _small_run(steps: int = 12, every: int = 4, seed: int = 0, **kwargs):
    y = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(99))
    prior = build_prior(
        get_preset("fast"), (64, 64), 1, perturb_std=0.03, seed=seed, device=torch.device("cpu")
    )
    gen = torch.Generator().manual_seed(seed + 1)
    return fit(
        Problem(y), prior, FitSettings(steps=steps, snapshot_every=every), generator=gen, **kwargs
    )


def test_fit_yields_snapshots_and_a_final_reason():
    snaps = list(_small_run(steps=10, every=4))
    assert [s.step for s in snaps] == [4, 8, 10]
    assert [s.stop_reason for s in snaps] == [None, None, "step budget reached"]
    assert snaps[-1].estimate.shape == (1, 64, 64)
    assert snaps[-1].loss < snaps[0].loss
    assert snaps[-1].elapsed > 0 and snaps[-1].eta == 0


def test_fit_is_deterministic_for_a_seed():
    a = list(_small_run(seed=3))[-1]
    b = list(_small_run(seed=3))[-1]
    c = list(_small_run(seed=4))[-1]
    assert torch.equal(a.average, b.average)
    assert not torch.equal(a.average, c.average)


def test_should_stop_ends_the_run_with_a_final_snapshot():
    calls = {"n": 0}

    def stop_after_five() -> bool:
        calls["n"] += 1
        return calls["n"] >= 5

    snaps = list(_small_run(steps=100, every=50, should_stop=stop_after_five))
    assert len(snaps) == 1
    assert snaps[0].step == 5
    assert snaps[0].stop_reason == "stopped on request"


def test_closing_the_generator_stops_it():
    run = _small_run(steps=100, every=2)
    first = next(run)
    run.close()
    assert first.step == 2
    with pytest.raises(StopIteration):
        next(run)


def test_rollback_restores_parameters_after_a_loss_jump():
    y = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    prior = build_prior(
        get_preset("fast"), (64, 64), 1, perturb_std=0.0, seed=0, device=torch.device("cpu")
    )
    head = prior.net.head
    calls = {"n": 0}

    def wreck_once(module, args):  # on the 20th forward pass the output layer breaks
        calls["n"] += 1
        if calls["n"] == 20:
            with torch.no_grad():
                module.bias.fill_(-50.0)  # sigmoid output collapses to 0: the loss jumps

    head.register_forward_pre_hook(wreck_once)
    snaps = list(fit(Problem(y), prior, FitSettings(steps=24, snapshot_every=1, rollback_every=1)))
    assert [s.rollbacks for s in snaps][18:20] == [0, 1]
    assert snaps[19].loss > 3 * snaps[18].loss  # the jump was seen at step 20 ...
    assert snaps[-1].loss < 1.2 * snaps[18].loss  # ... and undone: the fit carries on
    assert head.bias.abs().max().item() < 10


def test_a_saved_run_continues_exactly_where_it_stopped(tmp_path):
    whole = list(_small_run(steps=12, every=4))
    first = engine.FitState()
    part = list(_small_run(steps=8, every=4, state=first))
    assert first.step == 8 and part[-1].step == 8
    torch.save(vars(first), tmp_path / "run.pt")  # through a file, as a run of hours would
    state = engine.FitState(**torch.load(tmp_path / "run.pt", weights_only=True))
    rest = list(_small_run(steps=12, every=4, state=state))
    assert [s.step for s in rest] == [12]
    # A fresh prior and generator, put back into the saved run's state: the same result
    # as the run that never stopped, bit for bit (the perturbation's draws included).
    assert torch.equal(rest[-1].estimate, whole[-1].estimate)
    assert torch.equal(rest[-1].average, whole[-1].average)
    assert rest[-1].elapsed >= part[-1].elapsed and state.step == 12
    with pytest.raises(ValueError, match="at step 12; steps is 12"):
        next(_small_run(steps=12, state=state))


def test_precision_choices_and_errors():
    cpu = torch.device("cpu")
    assert engine.autocast_dtype(cpu, "float32") is None
    assert engine.autocast_dtype(cpu, "bfloat16") is torch.bfloat16
    assert engine.autocast_dtype(cpu, "auto") in (None, torch.bfloat16)
    with pytest.raises(ValueError, match="float16 is for GPUs"):
        engine.autocast_dtype(cpu, "float16")
    with pytest.raises(ValueError, match="unknown precision"):
        FitSettings(precision="float8")


def test_a_volume_never_fits_to_nan_in_any_precision(one_torch_thread):
    # oneDNN's bfloat16 Conv3d weight gradient is NaN with > 32 input channels on AMX CPUs
    # (one thread, 64² slices); a volume on a CPU runs in float32 instead of returning NaN
    stack, _ = samples.photon_limited((3, 32, 32))
    for precision in ("auto", "bfloat16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the fallback's, where it applies
            out = napari_dip.denoise(
                stack, axes="ZYX", mode="volume", steps=3, stop="none", precision=precision
            )
        assert np.isfinite(out.astype(np.float64)).all() and out.std() > 0
    with pytest.warns(RuntimeWarning, match="float32"):
        assert engine.autocast_dtype(torch.device("cpu"), "bfloat16", volumetric=True) is None
    assert engine.autocast_dtype(torch.device("cpu"), "auto", volumetric=True) is None


def test_bfloat16_fit_matches_float32_quality(one_torch_thread):
    # The same denoising run in both precisions: bf16 changes the arithmetic, not the outcome.
    g = torch.Generator().manual_seed(5)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    clean = (0.5 + 0.3 * torch.sin(6 * xx) * torch.cos(4 * yy))[None, None]
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=g)

    def psnr_of(precision: str) -> float:
        """The best PSNR along the run (its peak: a point on the rising curve would compare
        two runs' speeds, which differ by chance, not their quality)."""
        prior = build_prior(
            get_preset("fast"), (64, 64), 1, perturb_std=0.03, seed=0, device=torch.device("cpu")
        )
        settings = FitSettings(steps=300, snapshot_every=25, precision=precision)
        snaps = fit(Problem(noisy), prior, settings, generator=torch.Generator())
        mse = min(float(torch.mean((s.average[None] - clean) ** 2)) for s in snaps)
        return -10 * math.log10(mse)

    noisy_psnr = float(-10 * torch.log10(torch.mean((noisy - clean) ** 2)))
    fp32, bf16 = psnr_of("float32"), psnr_of("bfloat16")
    assert fp32 > noisy_psnr + 3
    assert abs(bf16 - fp32) < 0.5, (fp32, bf16)


@pytest.mark.parametrize("name", sorted(engine.PRESETS))
def test_every_preset_runs_under_bfloat16_autocast(name):
    # The spectral-bias layers keep float32 state (σ estimates, running means) under autocast.
    prior = build_prior(
        get_preset(name), (64, 64), 1, perturb_std=0.03, seed=0, device=torch.device("cpu")
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = prior()
    out.float().mean().backward()
    assert out.shape == (1, 1, 64, 64)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in prior.parameters())


def test_adam_betas_are_checked_and_used(one_torch_thread):
    # Faster-forgetting moments climb to the same quality in fewer steps than Adam's defaults
    # (benchmarks/optimiser.py; the `fast` preset's since 2026-11-29).
    for bad in ((0.9, 1.0), (-0.1, 0.9), (0.9,)):
        with pytest.raises(ValueError, match="betas"):
            FitSettings(betas=bad)
    assert FitSettings().betas == get_preset("paper").betas == (0.9, 0.999)  # Adam's defaults
    assert get_preset("fast").betas == (0.8, 0.9)
    g = torch.Generator().manual_seed(5)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    clean = (0.5 + 0.3 * torch.sin(6 * xx) * torch.cos(4 * yy))[None, None]
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=g)

    def psnr_of(betas: tuple[float, float]) -> float:
        prior = build_prior(
            get_preset("fast"), (64, 64), 1, perturb_std=0.03, seed=0, device=torch.device("cpu")
        )
        # at step 40 the defaults are still climbing (~30 dB here), the faster betas near their
        # peak (~34 dB); by step 100 both are near it and the order depends on the CPU's kernels
        settings = FitSettings(steps=40, snapshot_every=40, betas=betas, precision="float32")
        last = list(fit(Problem(noisy), prior, settings, generator=torch.Generator()))[-1]
        return float(-10 * torch.log10(torch.mean((last.average[None] - clean) ** 2)))

    default, faster = psnr_of((0.9, 0.999)), psnr_of((0.8, 0.9))
    assert faster > default + 1, (default, faster)
