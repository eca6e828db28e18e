"""The dock widgets in a real napari viewer: live updates, results, Stop, errors, geometry.

Small crops and the ``fast`` preset keep each run to a few seconds on a CPU.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio as psnr

from conftest import dock
from napari_dip import samples

TIMEOUT_MS = 60_000


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def configure(widget, steps: int, update_every: int, **values) -> None:
    widget.preset.value = "fast"
    widget.steps.value = steps
    widget.update_every.value = update_every
    widget.device.value = "cpu"
    for key, value in values.items():
        getattr(widget, key).value = value


def run_and_wait(qtbot, widget):
    """Click Run, wait for the end; return the layers the run added and how often data changed."""
    viewer = widget._viewer
    before = list(viewer.layers)
    changes = []

    def watch(event):
        event.value.events.data.connect(lambda _: changes.append(1))

    viewer.layers.events.inserted.connect(watch)
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    viewer.layers.events.inserted.disconnect(watch)
    return [layer for layer in viewer.layers if layer not in before], len(changes)


def assert_idle(widget) -> None:
    assert not widget.running
    assert widget.run_button.isEnabled() and not widget.stop_button.isEnabled()
    assert widget._form.enabled and widget._advanced.enabled


def test_the_automatic_stop_ends_the_run_early_with_a_full_bar(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    noisy, clean = samples.noisy(sigma=25, size=64, seed=1)
    viewer.add_image(noisy, name="noisy")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=900, update_every=50)
    added, _ = run_and_wait(qtbot, widget)
    out = added[0]
    # the discrepancy rule ends a 64² σ = 25 run after ~160 steps (ES-WMV alone: 400 or more)
    assert out.metadata["stop_reason"].startswith("discrepancy"), out.metadata["stop_reason"]
    assert out.metadata["step"] < 400 and out.metadata["best_step"] == out.metadata["step"]
    assert psnr(clean, out.data, data_range=255) > psnr(clean, noisy, data_range=255) + 5
    assert widget.progress.value() == widget.progress.maximum() == out.metadata["step"]
    assert widget.progress.format().startswith(f"done at step {out.metadata['step']}")


def test_denoise_updates_live_and_beats_the_input(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    noisy, clean = samples.noisy(sigma=25, size=64, seed=0)
    layer = viewer.add_image(noisy, name="cells", scale=(0.5, 0.5), translate=(3, 4))
    layer.axis_labels = ("y", "x")
    layer.units = ("um", "um")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=150, update_every=25)
    added, changes = run_and_wait(qtbot, widget)

    assert [a.name for a in added] == ["cells [denoised]"]  # one layer per run ...
    out = added[0]
    assert changes == 150 // 25 - 1  # ... created on the first update, then updated in place
    assert out.data.shape == noisy.shape
    assert psnr(clean, out.data, data_range=255) > psnr(clean, noisy, data_range=255) + 2
    assert out.metadata["stop_reason"] == "step budget reached"
    assert out.metadata["step"] == 150 and out.metadata["task"] == "denoise"
    # the default auto stop (ES-WMV + discrepancy) shows ES-WMV's score, from step 100 on (its
    # window); the layer holds the estimate it chose, and the plot has the loss and every score
    assert out.metadata["stop"] == "auto" and 100 <= out.metadata["best_step"] <= 150
    plot = widget.plot
    assert [s for s, _ in plot.loss] == [25, 50, 75, 100, 125, 150]
    assert [s for s, _ in plot.scores] == list(range(100, 151))
    assert plot.best_step == out.metadata["best_step"] and plot.stop_step == 150
    assert not plot.grab().isNull()  # paints
    assert f"result from step {plot.best_step}" in widget.progress.format()
    assert widget.progress.toolTip() == out.metadata["stop_reason"]
    assert out.metadata["source"] == "cells" and out.metadata["seed"] == 0
    np.testing.assert_allclose(out.scale, layer.scale)
    np.testing.assert_allclose(out.translate, layer.translate)
    assert tuple(out.axis_labels) == ("y", "x") and out.units == layer.units
    lo, hi = out.contrast_limits
    assert lo == out.data.min() and hi == out.data.max()
    np.testing.assert_array_equal(layer.data, noisy)  # the input is never modified
    assert_idle(widget)

    # a second run never overwrites the first result
    widget.steps.value = 10
    widget.update_every.value = 5
    added2, _ = run_and_wait(qtbot, widget)
    assert [a.name for a in added2] == ["cells [denoised 2]"]
    assert out in viewer.layers and out.metadata["step"] == 150


def test_inpaint_fills_the_mask(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    broken, mask, clean = samples.damaged(fraction=0.5, size=64, seed=0)
    layer = viewer.add_image(broken, name="scan")
    viewer.add_labels(mask.astype(np.int32), name="holes")
    widget = dock(viewer, "Inpaint")
    configure(widget, steps=150, update_every=50)
    assert widget.mask.value is viewer.layers["holes"]
    added, changes = run_and_wait(qtbot, widget)

    assert [a.name for a in added] == ["scan [inpainted]"] and changes >= 1
    out = added[0].data.astype(float)
    holes = mask.astype(bool)
    error_filled = np.abs(out[holes] - clean[holes]).mean()
    error_zeros = np.abs(broken[holes].astype(float) - clean[holes]).mean()
    assert error_filled < 0.3 * error_zeros
    assert error_filled < 30  # close to the truth, in 0-255 units
    np.testing.assert_array_equal(layer.data, broken)
    assert_idle(widget)


def test_super_resolve_on_the_current_slice_overlays_the_input(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    low, _ = samples.low_resolution(factor=2, size=32)
    stack = np.stack([low, low[::-1], low[:, ::-1]])  # (3, 16, 16)
    layer = viewer.add_image(stack, name="stack", scale=(2, 3, 3), translate=(10, 5, 7))
    viewer.dims.set_point(0, 14)  # world z = 14 is slice 2
    widget = dock(viewer, "Super-resolve")
    configure(widget, steps=20, update_every=10, factor=2)
    added, changes = run_and_wait(qtbot, widget)

    assert [a.name for a in added] == ["stack [super-resolved]"] and changes >= 1
    out = added[0]
    assert out.data.shape == (1, 32, 32)
    assert np.isfinite(out.data).all()
    np.testing.assert_allclose(out.scale, (2, 1.5, 1.5))
    np.testing.assert_allclose(out.translate, (14, 5 - 3 * 1 / 4, 7 - 3 * 1 / 4))
    # pixel edges of input and output coincide along the plane
    for a in (1, 2):
        edges_in = layer.translate[a] - layer.scale[a] / 2, layer.translate[a] + 15.5 * 3
        edges_out = out.translate[a] - out.scale[a] / 2, out.translate[a] + 31.5 * 1.5
        np.testing.assert_allclose(edges_in, edges_out)
    assert out.metadata["factor"] == 2 and out.metadata["slice"] == (2, None, None)
    np.testing.assert_array_equal(layer.data, stack)


def test_stop_keeps_the_result_so_far_and_the_history(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    rgb = samples.noisy(size=None, image="astronaut")[0][100:132, 200:232]  # (32, 32, 3)
    layer = viewer.add_image(rgb, name="photo")
    assert layer.rgb
    widget = dock(viewer, "Denoise")
    configure(widget, steps=100_000, update_every=5, keep_history=True)
    widget.run_button.click()
    assert widget.running and not widget.run_button.isEnabled() and widget.stop_button.isEnabled()
    assert not widget._form.enabled
    qtbot.waitUntil(lambda: "photo [denoised]" in viewer.layers, timeout=TIMEOUT_MS)
    widget.stop_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)

    out = viewer.layers["photo [denoised]"]
    assert out.rgb and out.data.shape == rgb.shape and np.isfinite(out.data).all()
    assert out.metadata["stopped"] and out.metadata["stop_reason"] == "stopped on request"
    assert 0 < out.metadata["step"] < 100_000
    history = viewer.layers["photo [denoised steps]"]
    steps = history.metadata["history_steps"]
    assert history.data.shape == (len(steps), *rgb.shape) and steps[-1] == out.metadata["step"]
    np.testing.assert_array_equal(history.data[-1], out.data)
    np.testing.assert_array_equal(layer.data, rgb)
    assert_idle(widget)


def test_bad_inputs_are_reported_and_nothing_breaks(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    broken, mask, _ = samples.damaged(size=32)
    image = viewer.add_image(broken, name="scan")
    inpaint = dock(viewer, "Inpaint")
    configure(inpaint, steps=5, update_every=5)
    n_layers = len(viewer.layers)

    inpaint.run_button.click()  # no mask layer chosen
    assert "choose a mask" in errors()[-1]
    viewer.add_labels(np.zeros((16, 16), np.int32), name="small")
    assert inpaint.mask.value is viewer.layers["small"]
    inpaint.run_button.click()  # mask of the wrong shape
    assert "shape" in errors()[-1]
    viewer.add_labels(np.zeros_like(mask, np.int32), name="empty")
    inpaint.mask.value = viewer.layers["empty"]
    inpaint.run_button.click()  # nothing painted
    assert "empty" in errors()[-1]

    flat = viewer.add_image(np.full((32, 32), 7, np.uint8), name="flat")
    denoise = dock(viewer, "Denoise")
    configure(denoise, steps=5, update_every=5, image=flat)
    denoise.run_button.click()  # constant image
    assert "constant" in errors()[-1]

    assert len(errors()) == 4
    assert len(viewer.layers) == n_layers + 3  # the three layers added here, no outputs
    np.testing.assert_array_equal(image.data, broken)
    for widget in (inpaint, denoise):
        assert_idle(widget)


def test_missing_device_and_worker_errors_are_reported(
    make_napari_viewer, qtbot, errors, monkeypatch
):
    import torch

    from napari_dip import engine
    from napari_dip.engine import device

    monkeypatch.setattr(device, "available_devices", lambda: ["cuda:0", "cpu"])
    viewer = make_napari_viewer()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=5, update_every=5)
    if not torch.cuda.is_available():
        widget.device.value = "cuda:0"
        widget.run_button.click()
        assert "cuda" in errors()[-1] and not widget.running
        widget.device.value = "cpu"

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        yield

    monkeypatch.setattr(engine, "fit", out_of_memory)
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert "out of memory" in errors()[-1]
    assert widget.progress.format() == "failed"
    assert [layer.name for layer in viewer.layers] == ["img"]
    assert_idle(widget)


def test_stop_rule_choice_and_presets_from_the_engine(make_napari_viewer, qtbot):
    from napari_dip.engine import PRESETS

    viewer = make_napari_viewer()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    assert list(widget.preset.choices) == list(PRESETS)
    widget.preset.value = "fast"
    auto_steps = widget.steps.value
    widget.stop_rule.value = "none"
    assert widget.steps.value == PRESETS["fast"].task("denoise").steps < auto_steps
    configure(widget, steps=20, update_every=10, stop_rule="none")
    added, _ = run_and_wait(qtbot, widget)
    out = added[0]
    assert out.metadata["stop"] == "none" and out.metadata["best_step"] == 20
    assert widget.plot.scores == [] and len(widget.plot.loss) == 2
    assert not widget.plot.grab().isNull()
    # every rule of the API is offered; the discrepancy rule only where it applies
    assert "discrepancy" in list(widget.stop_rule.choices)
    assert "discrepancy" not in list(dock(viewer, "Inpaint").stop_rule.choices)
    assert "discrepancy" not in list(dock(viewer, "Super-resolve").stop_rule.choices)


def test_widget_module_does_not_import_torch():
    code = (
        "import sys, napari_dip._widget, napari_dip._sample_data, napari_dip._layers; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_estimate_time_shows_the_run_time_and_adds_nothing(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=300, update_every=5)
    widget.estimate_button.click()
    assert widget.estimating  # in a worker thread; nothing else starts meanwhile
    assert not widget.estimate_button.isEnabled() and not widget.run_button.isEnabled()
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)

    text = widget.estimate_label.text()
    assert text.startswith("estimate: ") and " s" in text and "(300 steps)" in text, text
    assert [layer.name for layer in viewer.layers] == ["img"] and errors() == []
    assert_idle(widget)
    assert widget.estimate_button.isEnabled()
    widget.steps.value = 200  # the estimate was for other settings
    assert widget.estimate_label.text() == ""

    # no stop rule: every step runs, so there is no "typically"
    widget.stop_rule.value = "none"
    widget.steps.value = 50
    widget.estimate_button.click()
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)
    assert widget.estimate_label.text().startswith("estimate: about "), widget.estimate_label.text()
    assert "(50 steps)" in widget.estimate_label.text()

    widget.estimate_button.click()
    widget.seed.value = 3  # a change while the estimate runs makes its result stale
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)
    assert "estimate again" in widget.estimate_label.text()


def test_estimate_counts_slices_and_tiles_and_refuses_volumes(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(np.stack([noisy, noisy[::-1], noisy[:, ::-1]]), name="stack")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=100, update_every=5, mode="slices", stop_rule="none", tile=16)
    widget.steps.value = 100  # the stop rule's change set the preset's steps
    widget.estimate_button.click()
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)
    per_slice, total = widget.estimate_label.text().split("\n")
    # 32 pixels in 16-pixel tiles overlapping by 2: 3 × 3 tiles per slice
    assert per_slice.startswith("estimate per slice: about ")
    assert per_slice.endswith("(900 steps), over 9 tiles"), per_slice
    assert total.startswith("3 slices × 9 tiles each, in all: about ") and "(2700 steps)" in total

    widget.mode.value = "volume"
    widget.estimate_button.click()
    assert "not available" in widget.estimate_label.text() and not widget.estimating
    widget.axes.value = "ZYXC"  # wrong number of letters
    widget.estimate_button.click()
    assert "dimensions" in errors()[-1] and widget.estimate_label.text() == ""

    viewer.layers.clear()  # no image layer left
    widget.estimate_button.click()
    assert "choose an image layer" in errors()[-1]
    assert len(viewer.layers) == 0 and len(errors()) == 2
    assert_idle(widget)
    assert widget.estimate_button.isEnabled()


def test_precision_and_exact_preset_defaults_reach_the_run(make_napari_viewer, qtbot, monkeypatch):
    from napari_dip import restore
    from napari_dip.engine import PRESETS

    calls = []
    original = restore.restore_steps

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(restore, "restore_steps", recording)
    viewer = make_napari_viewer()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    assert widget.precision.value == "auto"
    configure(widget, steps=2, update_every=1, precision="float32")
    assert widget.perturb_std.value == round(1 / 30, 4)  # shown rounded ...
    added, _ = run_and_wait(qtbot, widget)

    preset = PRESETS["fast"]
    assert calls[-1]["precision"] == "float32"
    assert calls[-1]["perturb_std"] == preset.task("denoise").perturb_std == 1 / 30  # ... exact
    assert calls[-1]["lr"] == preset.lr
    meta = added[0].metadata
    assert meta["precision"] == "float32" and meta["perturb_std"] == 1 / 30

    widget.perturb_std.value = 0.05  # a value the user typed is passed as it is
    widget.lr.value = 0.002
    run_and_wait(qtbot, widget)
    assert calls[-1]["perturb_std"] == 0.05 and calls[-1]["lr"] == 0.002
    assert calls[-1]["precision"] == "float32"


def test_float16_on_the_cpu_is_refused_and_nothing_breaks(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=2, update_every=1, precision="float16")
    widget.run_button.click()
    assert "float16" in errors()[-1] and not widget.running
    widget.estimate_button.click()  # refused before any worker starts, too
    assert "float16" in errors()[-1] and not widget.estimating
    assert len(errors()) == 2 and [layer.name for layer in viewer.layers] == ["img"]
    assert_idle(widget)
    assert widget.estimate_button.isEnabled()

    widget.precision.value = "float32"  # still usable
    added, _ = run_and_wait(qtbot, widget)
    assert added[0].metadata["precision"] == "float32" and added[0].metadata["step"] == 2
