"""A known Gaussian noise level (option ``sigma``): checked, carried to the noise model, and
used by the stop rules and the estimated PSNR in place of the level read from the image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import napari_dip
from napari_dip import engine, samples
from napari_dip.cli.parser import build_parser
from napari_dip.cli.parser import run_options as cli_options
from napari_dip.options import make_options

RUN = {"device": "cpu", "tile": None}


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"sigma": 0.0}, ValueError, "sigma must be positive"),
        ({"sigma": -3.0}, ValueError, "sigma must be positive"),
        ({"sigma": float("nan")}, ValueError, "sigma must be finite"),
        ({"sigma": "25"}, TypeError, "sigma must be a number"),
        ({"sigma": 25.0, "noise": "poisson"}, ValueError, "read_noise instead"),
        ({"sigma": 25.0, "gain": 2.0}, ValueError, "different noise models"),
    ],
)
def test_a_bad_noise_level_is_refused_when_the_request_is_made(options, error, match):
    with pytest.raises(error, match=match):
        make_options(**options)


def test_the_noise_level_is_given_in_the_images_units_and_reaches_the_model():
    """σ in intensity units becomes the normalised model's σ; 'auto' with σ given is
    Gaussian; the discrepancy rule takes it instead of the level the image shows."""
    from napari_dip._noise import noise_terms

    terms, camera = noise_terms("gaussian", np.zeros((1, 4, 4)), 100.0, 300.0, sigma=20.0)
    assert terms == {"sigma": pytest.approx(0.1)} and camera is None
    model = engine.make_noise_model("gaussian", **terms)
    assert model.variance(torch.zeros(3)).tolist() == pytest.approx([0.01] * 3)
    assert repr(model) == "Gaussian(sigma=0.1)"

    rule = engine.Discrepancy()
    y = 0.5 + 0.3 * torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    problem = engine.Problem(y, noise=model)
    rule.prepare(problem)
    assert rule.sigma == pytest.approx(0.1) and rule.sigma_known
    rule.prepare(engine.Problem(y))  # not given: the image's own level, about 0.3
    assert rule.sigma == pytest.approx(0.3, rel=0.1) and not rule.sigma_known

    counts = samples.photon_limited(shape=(1, 64, 64), seed=0)[0][0]  # photon counts...
    last = list(napari_dip.restore_steps(counts, sigma=5.0, steps=20, update_every=10, **RUN))[-1]
    assert last.noise == "gaussian"  # ...taken as Gaussian when a σ is given


def test_the_cli_takes_the_noise_level():
    args = build_parser().parse_args(["denoise", "in.tif", "--sigma", "12.5"])
    assert cli_options(args)["sigma"] == 12.5


def _sure_run(noisy: np.ndarray, **options: object) -> napari_dip.Snapshot:
    last = list(
        napari_dip.restore_steps(noisy, stop="sure", steps=900, update_every=100, **RUN, **options)
    )[-1]
    assert last.stop_reason.startswith("SURE")
    return last


def test_sure_estimates_the_psnr_from_the_noise_level_it_is_given():
    """Told the true σ, SURE's estimated PSNR is close to the true one; told a level 40 %
    too high, it moves by decibels (SURE subtracts the noise variance), so the option is
    what the estimate rests on."""
    noisy, clean = samples.noisy(sigma=25, size=48, seed=2, image="moon")  # unclipped
    assert noisy.min() > 0 and noisy.max() < 255
    last = _sure_run(noisy, sigma=25.0)
    estimated = last.estimated_psnr
    error = np.mean((last.result().astype(np.float64) - clean) ** 2)
    true = 10 * math.log10(255.0**2 / error)
    assert estimated is not None and abs(estimated - true) < 1.0, (estimated, true)
    # its own sampling error on 48² pixels: decibels below, unbounded above (SURE's error
    # could be 0 within ± 2 of its standard deviations)
    low, high = last.estimated_psnr_range
    assert low < true < high and low < estimated - 1 and high == math.inf, (low, high)
    wrong = _sure_run(noisy, sigma=35.0).estimated_psnr
    assert wrong is None or abs(wrong - estimated) > 2.0, (wrong, estimated)
