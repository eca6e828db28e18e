"""The generalised Anscombe transform: variance stabilisation and unbiased inversion."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dip.anscombe import gat, inverse_algebraic, inverse_unbiased

GAIN, OFFSET, READ = 2.0, 100.0, 2.0  # the camera of the benchmarks: ADU/photon, ADU, ADU


def _camera(lam: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return GAIN * rng.poisson(lam, n) + OFFSET + rng.normal(0.0, READ, n)


@pytest.mark.parametrize(("photons", "tolerance"), [(5, 0.05), (30, 0.02), (100, 0.02)])
def test_variance_is_stabilised_to_one(photons: float, tolerance: float) -> None:
    z = _camera(photons, 200_000, seed=photons)
    assert np.var(gat(z, GAIN, OFFSET, READ)) == pytest.approx(1.0, abs=tolerance)


def test_unit_gain_defaults_are_classic_anscombe() -> None:
    z = np.array([0.0, 1.0, 10.0])
    np.testing.assert_allclose(gat(z), 2 * np.sqrt(z + 3 / 8))


def test_unbiased_inverse_beats_algebraic_at_low_counts() -> None:
    lam = 2.0
    mean_d = gat(_camera(lam, 400_000, seed=7), GAIN, OFFSET, READ).mean()  # Monte-Carlo E[gat]
    unbiased = (inverse_unbiased(mean_d, GAIN, OFFSET, READ) - OFFSET) / GAIN
    algebraic = (inverse_algebraic(mean_d, GAIN, OFFSET, READ) - OFFSET) / GAIN
    assert abs(unbiased - lam) / lam < 0.05
    assert abs(algebraic - lam) / lam > 0.10
    assert abs(algebraic - lam) > 4 * abs(unbiased - lam)


def test_round_trip_at_high_counts() -> None:
    z = np.linspace(OFFSET + GAIN * 200, OFFSET + GAIN * 5000, 50)
    np.testing.assert_allclose(inverse_algebraic(gat(z, GAIN, OFFSET, READ), GAIN, OFFSET, READ), z)
    # The unbiased inverse differs from the algebraic one by ≈ gain/4 there (the 3/8 vs 1/8).
    back = inverse_unbiased(gat(z, GAIN, OFFSET, READ), GAIN, OFFSET, READ)
    np.testing.assert_allclose(back, z + GAIN / 4, rtol=1e-4)


def test_small_values_clip_to_offset() -> None:
    d = np.array([0.0, 0.1, 0.5, 1.0, 2 * np.sqrt(3 / 8)])
    out = inverse_unbiased(d, GAIN, OFFSET, READ)
    np.testing.assert_array_equal(out, OFFSET)  # λ = 0, never the blow-up of 1/D³
    assert np.all(np.diff(inverse_unbiased(np.linspace(0, 30, 301))) >= 0)  # monotone


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="gain"):
        gat(np.ones(3), gain=0.0)
    with pytest.raises(ValueError, match="read_noise"):
        inverse_unbiased(np.ones(3), read_noise=-1.0)
