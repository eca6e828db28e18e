"""Uncertainty maps and the estimated PSNR in the docks.

*Uncertainty map* (Advanced, every dock) adds, when the run ends, a layer ``NAME [… σ]``: the
ensemble members' standard deviation, float32 in the input's units, with the result's
geometry. A stop rule that estimates the PSNR without ground truth (``validation``,
``sure``) shows it in the progress text, the plot and the result's metadata.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import napari_dip
from conftest import dock
from napari_dip import samples
from napari_dip.options import UNCERTAINTY_MEMBERS
from test_widget_support import TIMEOUT_MS, assert_idle, configure, run_and_wait, watch_progress

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN = {"device": "cpu", "stop": "none", "preset": "fast"}


@pytest.fixture
def infos():
    """Messages of the info notifications shown during the test."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    seen: list = []
    notification_manager.notification_ready.connect(seen.append)
    yield lambda: [str(n.message) for n in seen if n.severity == NotificationSeverity.INFO]
    notification_manager.notification_ready.disconnect(seen.append)


def test_the_uncertainty_map_is_the_ensembles_spread_over_the_result(
    make_napari_viewer_proxy, qtbot
):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(sigma=25, size=32, seed=4)
    layer = viewer.add_image(noisy, name="img", scale=(0.5, 0.5), translate=(3, 4))
    layer.units = ("um", "um")
    widget = dock(viewer, "Denoise")
    form = widget.form
    assert "standard deviation" in form.uncertainty.tooltip
    assert "When to change it" in form.ensemble.tooltip
    form.uncertainty.value = True  # ticking it shows the ensemble that will run
    assert form.ensemble.value == UNCERTAINTY_MEMBERS
    configure(widget, ensemble=2, stop="none", steps=6, update_every=3)
    added, _ = run_and_wait(qtbot, widget)

    out, sigma = added
    assert (out.name, sigma.name) == ("img [denoised]", "img [denoised σ]")
    result, spread = napari_dip.denoise(noisy, steps=6, ensemble=2, uncertainty=True, **RUN)
    np.testing.assert_array_equal(out.data, result)
    assert sigma.data.dtype == np.float32 and sigma.data.shape == noisy.shape
    np.testing.assert_array_equal(sigma.data, spread)
    assert sigma.data.max() > 0
    np.testing.assert_allclose(sigma.scale, out.scale)
    np.testing.assert_allclose(sigma.translate, out.translate)
    assert sigma.units == out.units and sigma.colormap.name == "magma"
    assert sigma.contrast_limits == [0.0, pytest.approx(float(np.percentile(spread, 99.5)))]
    assert sigma.contrast_limits_range == [0.0, pytest.approx(float(spread.max()))]
    meta = sigma.metadata
    assert "standard deviation of the ensemble's members" in meta["uncertainty"]
    assert "input's intensity units" in meta["uncertainty"]
    assert meta["result"] == out.name and meta["ensemble"] == 2 and meta["complete"]
    assert out.metadata["uncertainty_layer"] == sigma.name and out.metadata["ensemble"] == 2
    assert_idle(widget)

    (again, sigma2), _ = run_and_wait(qtbot, widget)  # a second run: its own pair
    assert (again.name, sigma2.name) == ("img [denoised 2]", "img [denoised 2 σ]")


def test_every_dock_has_it_and_rgb_or_upscaled_results_get_a_fitting_map(
    make_napari_viewer_proxy, qtbot
):
    viewer = make_napari_viewer_proxy()
    docks = {name: dock(viewer, name) for name in ("Denoise", "Inpaint", "Super-resolve")}
    docks["Deconvolve"] = dock(viewer, "Deconvolve")
    for name, widget in docks.items():
        assert widget.form.uncertainty in widget.form.advanced_box, name
        assert widget.form.ensemble in widget.form.advanced_box, name

    rgb = samples.noisy(size=None, image="astronaut")[0][100:132, 200:232]  # (32, 32, 3)
    viewer.add_image(rgb, name="photo")
    denoise = docks["Denoise"]
    configure(denoise, image=viewer.layers["photo"], uncertainty=True, ensemble=2)
    configure(denoise, stop="none", steps=3, update_every=3)
    (out, sigma), _ = run_and_wait(qtbot, denoise)
    assert out.rgb and not sigma.rgb and sigma.data.shape == (32, 32)  # one σ per pixel
    _, spread = napari_dip.denoise(
        rgb, channel_axis=-1, steps=3, ensemble=2, uncertainty=True, **RUN
    )
    np.testing.assert_allclose(sigma.data, np.sqrt(np.mean(spread**2, axis=-1)), rtol=1e-6)
    assert "root mean square" in sigma.metadata["colour"]

    low, _ = samples.low_resolution(factor=2, size=24)
    viewer.add_image(low, name="low", scale=(2, 2))
    upscale = docks["Super-resolve"]
    configure(upscale, image=viewer.layers["low"], factor=2, uncertainty=True, ensemble=2)
    configure(upscale, stop="none", steps=2, update_every=2)
    (out, sigma), _ = run_and_wait(qtbot, upscale)
    assert sigma.name == "low [super-resolved σ]" and sigma.data.shape == out.data.shape
    np.testing.assert_allclose(sigma.scale, out.scale)
    np.testing.assert_allclose(sigma.translate, out.translate)


def test_a_stack_gets_a_map_of_its_own_shape(make_napari_viewer_proxy, qtbot, infos):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=16, seed=1)
    stack = np.stack([noisy, noisy[::-1]])
    movie = viewer.add_image(stack, name="movie", scale=(5, 1, 1))
    movie.axis_labels = ("t", "y", "x")
    widget = dock(viewer, "Denoise")
    configure(widget, mode="slices", uncertainty=True, ensemble=2, stop="none", steps=2)
    added, _ = run_and_wait(qtbot, widget)
    if len(added) == 1 and any("no uncertainty map" in m for m in infos()):
        pytest.xfail("the pipeline's stack snapshots carry no spreads (JobState._stack)")
    out, sigma = added
    assert sigma.name == "movie [denoised σ]" and sigma.data.shape == stack.shape
    assert sigma.data.dtype == np.float32 and (sigma.data.reshape(2, -1).max(axis=1) > 0).all()
    np.testing.assert_allclose(sigma.scale, out.scale)
    assert tuple(sigma.axis_labels) == ("t", "y", "x")


def test_a_stopped_ensemble_keeps_its_preview_and_says_why_there_is_no_map(
    make_napari_viewer_proxy, qtbot, errors, infos
):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32, seed=2)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, uncertainty=True, ensemble=2, workers=1, stop="none", steps=100_000)
    widget.run_button.click()
    qtbot.waitUntil(lambda: "img [denoised]" in viewer.layers, timeout=TIMEOUT_MS)
    widget.stop_button.click()  # during the first member
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    out = viewer.layers["img [denoised]"]
    assert out.metadata["stopped"] and out.data.shape == noisy.shape
    assert not np.array_equal(out.data, noisy)  # the first member's best so far
    assert "img [denoised σ]" not in viewer.layers and out.metadata["uncertainty_layer"] is None
    assert "no uncertainty map" in infos()[-1] and "stopped" in infos()[-1]
    assert errors() == [] and widget.progress.format().startswith("stopped")
    assert_idle(widget)


def test_the_estimated_psnr_shows_live_in_the_text_the_plot_and_the_metadata(
    make_napari_viewer_proxy, qtbot
):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(sigma=25, size=48, seed=0, image="moon")  # unclipped noise
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    # two tiles one after the other: the estimate comes when the first ends, while the
    # second runs
    configure(widget, stop="validation", steps=6, update_every=2, tile=32, workers=1)
    shown = watch_progress(widget)
    (out,), _ = run_and_wait(qtbot, widget)
    psnr = out.metadata["estimated_psnr"]
    assert isinstance(psnr, float) and 5 < psnr < 60
    live = [t for t in shown if "dB est." in t]
    assert live and live[0].startswith("tile ") and "≈ " in live[0], shown
    low, high = out.metadata["estimated_psnr_range"]  # the estimate's own sampling error
    assert low < psnr < high
    bracket = f"({low:.1f}–{high:.1f})" if math.isfinite(high) else f"(≥ {low:.1f})"
    assert widget.progress.format().endswith(f"· ≈ {psnr:.1f} dB est. {bracket}")
    assert "without ground truth" in widget.progress.toolTip()
    assert "sampling error" in widget.progress.toolTip()
    assert widget.plot.estimated_psnr == psnr
    assert widget.plot.estimate_text == f"≈ {psnr:.1f} dB est. {bracket}"

    configure(widget, stop="sure", steps=10, update_every=5, tile="none")  # SURE, at the end
    (out,), _ = run_and_wait(qtbot, widget)
    assert out.metadata["stop"] == "sure" and out.metadata["estimated_psnr"] > 5
    assert "dB est." in widget.progress.format()
    configure(widget, stop="none", steps=2)  # no estimate: nothing said
    (out,), _ = run_and_wait(qtbot, widget)
    assert out.metadata["estimated_psnr"] is None and "dB" not in widget.progress.format()
    assert out.metadata["estimated_psnr_range"] is None
    assert widget.plot.estimated_psnr is None


def test_fusion_is_offered_with_the_sure_stop_and_its_weight_is_shown(
    make_napari_viewer_proxy, qtbot
):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(sigma=25, size=48, seed=0, image="moon")
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    form = widget.form
    assert not form.fuse.enabled  # the default stop: nothing to weigh the blend by
    assert "fuse" not in form.run_options()
    configure(widget, stop="sure", steps=10, update_every=5, tile="none", fuse="nlmeans")
    assert form.fuse.enabled and "SURE" in form.fuse.tooltip
    (out,), _ = run_and_wait(qtbot, widget)
    weight = out.metadata["fusion_weight"]
    assert out.metadata["fuse"] == "nlmeans" and 0 <= weight <= 1
    assert f"network's weight {weight:.2f}" in widget.progress.toolTip()
    expected = napari_dip.denoise(
        noisy, stop="sure", steps=10, fuse="nlmeans", device="cpu", tile=None, update_every=5
    )
    np.testing.assert_array_equal(out.data, expected)
    for name, offered in (("Super-resolve", False), ("Inpaint", True)):
        other = dock(viewer, name).form  # (shown once its Advanced box is)
        assert other.fuse.native.isVisibleTo(other.advanced_box.native) == offered, name
    inpaint = other.fuse  # the biharmonic fill, on with its stop
    assert inpaint.enabled and inpaint.value == "auto"
    assert list(inpaint.choices) == ["auto", "none", "biharmonic"]
    assert_idle(widget)
