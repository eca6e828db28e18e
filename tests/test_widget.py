"""The dock widgets in a real napari viewer: live updates, results, Stop, errors, geometry,
the estimate, and what importing the widget package does to the process.

Small crops and the ``fast`` preset keep each run to a few seconds on a CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from qtpy.QtGui import QImage
from skimage.metrics import peak_signal_noise_ratio as psnr

import napari_dip
from conftest import dock
from napari_dip import samples
from test_widget_support import TIMEOUT_MS, assert_idle, configure, run_and_wait

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def painted(plot) -> dict[str, int]:
    """How many pixels of the plot area (below the legend, which shows every colour whether or
    not its curve is drawn) have the hue of the loss, the score, the chosen step and the stop;
    by hue, as antialiasing blends the thin lines with the dark background."""
    image = plot.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    ratio, (left, top, right, bottom) = image.devicePixelRatio(), plot.MARGIN
    bits = image.constBits()
    bits.setsize(image.sizeInBytes())
    bgra = np.frombuffer(bits, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    rows = slice(int(top * ratio), int((plot.height() - bottom) * ratio))
    cols = slice(int(left * ratio), int((plot.width() - right) * ratio))
    b, g, r = (bgra[rows, cols, i].astype(int) for i in range(3))
    return {
        "loss": int((b - np.maximum(r, g) > 40).sum()),  # blue
        "score": int(((r - g > 30) & (g - b > 30)).sum()),  # orange
        "chosen step": int((g - np.maximum(r, b) > 40).sum()),  # green
        "stop": int(((r - np.maximum(g, b) > 60) & (np.abs(g - b) < 15)).sum()),  # red
    }


def test_the_automatic_stop_ends_the_run_early_with_a_full_bar(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    noisy, clean = samples.noisy(sigma=50, size=48, seed=1)
    viewer.add_image(noisy, name="noisy")
    widget = dock(viewer, "Denoise")
    assert widget.form.quality.value == "balanced" and widget.form.stop.value == "auto"
    configure(widget, update_every=20)
    (out,), _ = run_and_wait(qtbot, widget)
    meta = out.metadata
    # the discrepancy rule ends a 48² σ = 50 run after ~60 steps, long before the ceiling
    assert meta["stop_reason"].startswith("discrepancy"), meta["stop_reason"]
    assert meta["step"] < 200 < meta["steps"] and meta["best_step"] == meta["step"]
    assert meta["quality"] == "balanced" and meta["preset"] == "fast"
    assert psnr(clean, out.data, data_range=255) > psnr(clean, noisy, data_range=255) + 5
    assert widget.progress.value() == widget.progress.maximum()  # ended by itself: full
    assert widget.progress.format().startswith(f"done at step {meta['step']}")
    assert widget.progress.toolTip() == meta["stop_reason"]


def test_denoise_updates_live_and_beats_the_input(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    noisy, clean = samples.noisy(sigma=25, size=48, seed=0)
    layer = viewer.add_image(noisy, name="cells", scale=(0.5, 0.5), translate=(3, 4))
    layer.axis_labels = ("y", "x")
    layer.units = ("um", "um")
    widget = dock(viewer, "Denoise")
    configure(widget, stop="sharpness", steps=60, update_every=20)
    assert widget.form.quality.value == "custom"  # none of the three
    added, changes = run_and_wait(qtbot, widget)

    assert [a.name for a in added] == ["cells [denoised]"]  # one layer per run ...
    out = added[0]
    assert changes == 60 // 20 - 1  # ... made on the first update, then updated in place
    assert out.data.shape == noisy.shape and out.data.dtype == noisy.dtype
    assert psnr(clean, out.data, data_range=255) > psnr(clean, noisy, data_range=255) + 2
    meta = out.metadata
    assert meta["stop_reason"] == "step budget reached" and meta["step"] == 60
    assert meta["task"] == "denoise" and meta["source"] == "cells" and meta["seed"] == 0
    # the layer holds the estimate the rule chose; the plot has the loss of every update and
    # the rule's score of every step
    assert meta["stop"] == "sharpness" and 1 <= meta["best_step"] <= 60
    plot = widget.plot
    assert [s for s, _ in plot.loss] == [20, 40, 60]
    assert [s for s, _ in plot.scores] == list(range(1, 61))
    assert plot.best_step == meta["best_step"] and plot.stop_step == 60
    assert [name for name, _ in plot.legend()] == ["loss", "stop score", "chosen step", "stop"]
    assert plot.AXIS_LABELS == ("step", "loss", "score")
    # and drawn: each curve and mark shows in the plot area (measured: 367 loss, 771 score,
    # 164 chosen-step and 25 stop-flag pixels; nothing drawn: 0)
    drawn = painted(plot)
    assert all(n >= 10 for n in drawn.values()), drawn
    assert f"result from step {plot.best_step}" in widget.progress.format()
    np.testing.assert_allclose(out.scale, layer.scale)
    np.testing.assert_allclose(out.translate, layer.translate)
    assert tuple(out.axis_labels) == ("y", "x") and out.units == layer.units
    lo, hi = out.contrast_limits
    assert lo == out.data.min() and hi == out.data.max()
    np.testing.assert_array_equal(layer.data, noisy)  # the input is never modified
    assert_idle(widget)


def test_inpaint_fills_the_holes_close_to_the_truth(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    broken, mask, clean = samples.damaged(fraction=0.5, size=48, seed=0)
    layer = viewer.add_image(broken, name="scan")
    viewer.add_labels(mask.astype(np.int32), name="holes")
    widget = dock(viewer, "Inpaint")
    assert widget.mask.value.name == "holes"  # the Labels layer is picked by itself
    configure(widget, stop="none", steps=60, update_every=30)
    added, changes = run_and_wait(qtbot, widget)

    assert [a.name for a in added] == ["scan [inpainted]"] and changes >= 1
    out = added[0].data.astype(float)
    holes = mask.astype(bool)
    error_filled = np.abs(out[holes] - clean[holes]).mean()
    error_zeros = np.abs(broken[holes].astype(float) - clean[holes]).mean()
    assert error_filled < 0.4 * error_zeros
    assert error_filled < 15  # close to the truth, in 0-255 units
    np.testing.assert_array_equal(layer.data, broken)
    assert_idle(widget)


def test_inpaint_blends_in_the_biharmonic_fill_by_default_and_says_its_weight(
    make_napari_viewer_proxy, qtbot
):
    viewer = make_napari_viewer_proxy()
    broken, mask, _ = samples.damaged(fraction=0.5, size=48, seed=0)
    viewer.add_image(broken, name="scan")
    viewer.add_labels(mask.astype(np.int32), name="holes")
    widget = dock(viewer, "Inpaint")
    configure(widget, steps=40, update_every=20)  # the default stop holds pixels out
    (out,), _ = run_and_wait(qtbot, widget)
    weight = out.metadata["fusion_weight"]
    assert out.metadata["fuse"] == "biharmonic" and 0 <= weight <= 1
    assert f"network's weight {weight:.2f}" in widget.progress.toolTip()
    run = {"steps": 40, "update_every": 20, "device": "cpu"}
    np.testing.assert_array_equal(out.data, napari_dip.inpaint(broken, mask, **run))
    configure(widget, fuse="none")
    (plain,), _ = run_and_wait(qtbot, widget)
    assert plain.metadata["fuse"] == "none" and plain.metadata["fusion_weight"] is None
    np.testing.assert_array_equal(plain.data, napari_dip.inpaint(broken, mask, fuse="none", **run))
    configure(widget, stop="wmv")  # a stop that holds nothing out: nothing to weigh by
    assert not widget.form.fuse.enabled and "fuse" not in widget.form.run_options()
    assert_idle(widget)


def test_super_resolution_of_the_shown_slice_beats_the_input_and_overlays_it(
    make_napari_viewer_proxy, qtbot
):
    viewer = make_napari_viewer_proxy()
    low, clean = samples.low_resolution(factor=2, size=48)  # (24, 24) from (48, 48)
    stack = np.stack([low[::-1], low[:, ::-1], low])  # slice 2 is the sample itself
    layer = viewer.add_image(stack, name="stack", scale=(2, 3, 3), translate=(10, 5, 7))
    viewer.dims.set_point(0, 14)  # world z = 14 is slice 2
    widget = dock(viewer, "Super-resolve")
    configure(widget, factor=2, stop="none", steps=100, update_every=50)
    added, changes = run_and_wait(qtbot, widget)

    assert [a.name for a in added] == ["stack [super-resolved]"] and changes >= 1
    out = added[0]
    assert out.data.shape == (1, 48, 48) and out.data.dtype == np.uint8
    shown = np.repeat(np.repeat(low, 2, 0), 2, 1)  # the input as the viewer shows it
    assert psnr(clean, out.data[0], data_range=255) > psnr(clean, shown, data_range=255) + 0.5
    np.testing.assert_allclose(out.scale, (2, 1.5, 1.5))
    np.testing.assert_allclose(out.translate, (14, 5 - 3 / 4, 7 - 3 / 4))
    for a in (1, 2):  # pixel edges of input and output coincide along the plane
        edges_in = layer.translate[a] - layer.scale[a] / 2, layer.translate[a] + 23.5 * 3
        edges_out = out.translate[a] - out.scale[a] / 2, out.translate[a] + 47.5 * 1.5
        np.testing.assert_allclose(edges_in, edges_out)
    assert out.metadata["factor"] == 2 and out.metadata["slice"] == (2, None, None)
    np.testing.assert_array_equal(layer.data, stack)


def test_stop_keeps_the_result_so_far_and_the_history(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    rgb = samples.noisy(size=None, image="astronaut")[0][100:132, 200:232]  # (32, 32, 3)
    layer = viewer.add_image(rgb, name="photo")
    assert layer.rgb
    widget = dock(viewer, "Denoise")
    configure(widget, stop="none", steps=100_000, update_every=5, keep_history=True)
    widget.run_button.click()
    assert widget.running and not widget.run_button.isEnabled() and widget.stop_button.isEnabled()
    assert not widget.form.first.enabled and not widget.form.advanced_box.enabled
    qtbot.waitUntil(lambda: "photo [denoised]" in viewer.layers, timeout=TIMEOUT_MS)
    widget.stop_button.click()
    assert widget.progress.format() == "stopping…"
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)

    out = viewer.layers["photo [denoised]"]
    assert out.rgb and out.data.shape == rgb.shape and np.isfinite(out.data).all()
    assert out.metadata["stopped"] and out.metadata["stop_reason"] == "stopped on request"
    assert 0 < out.metadata["step"] < 100_000
    assert widget.progress.format().startswith("stopped at step")
    assert widget.progress.value() < widget.progress.maximum()  # stopped: not full
    history = viewer.layers["photo [denoised steps]"]
    steps = history.metadata["history_steps"]
    assert history.data.shape == (len(steps), *rgb.shape) and steps[-1] == out.metadata["step"]
    np.testing.assert_array_equal(history.data[-1], out.data)
    assert not history.visible
    np.testing.assert_array_equal(layer.data, rgb)
    assert_idle(widget)


def test_bad_inputs_and_failures_are_reported_and_nothing_breaks(
    make_napari_viewer_proxy, qtbot, errors, monkeypatch
):
    import torch

    from napari_dip import engine
    from napari_dip.engine import device

    monkeypatch.setattr(device, "available_devices", lambda: ["cuda:0", "cpu"])
    viewer = make_napari_viewer_proxy()
    broken, mask, _ = samples.damaged(size=32)
    image = viewer.add_image(broken, name="scan")
    inpaint = dock(viewer, "Inpaint")
    configure(inpaint, steps=5)
    n_layers = len(viewer.layers)

    inpaint.run_button.click()  # no mask layer
    assert "choose a mask" in errors()[-1] and not inpaint.running
    viewer.add_labels(np.zeros((16, 16), np.int32), name="small")
    assert inpaint.mask.value.name == "small"
    inpaint.run_button.click()  # a mask of the wrong shape
    assert "shape" in errors()[-1]
    viewer.add_labels(np.zeros_like(mask, np.int32), name="empty")
    inpaint.mask.value = viewer.layers["empty"]
    inpaint.run_button.click()  # nothing painted
    assert "empty" in errors()[-1]
    configure(inpaint, precision="float16")  # not on a CPU: the plan refuses it at once
    inpaint.mask.value = viewer.layers["small"]
    viewer.layers["small"].data = mask.astype(np.int32)
    inpaint.run_button.click()
    assert "float16" in errors()[-1] and not inpaint.running
    inpaint.estimate_button.click()  # refused before any worker starts, too
    assert "float16" in errors()[-1] and not inpaint.estimating
    configure(inpaint, precision="auto", tile="big")
    inpaint.run_button.click()
    assert "tile size must be 'auto', 'none' or a whole number" in errors()[-1]
    configure(inpaint, tile="auto")

    flat = viewer.add_image(np.full((32, 32), 7, np.uint8), name="flat")
    denoise = dock(viewer, "Denoise")
    configure(denoise, steps=5, image=flat)
    denoise.run_button.click()  # constant: found when the worker reads the pixels
    qtbot.waitUntil(lambda: not denoise.running, timeout=TIMEOUT_MS)
    assert "constant" in errors()[-1] and denoise.progress.format() == "failed"

    if not torch.cuda.is_available():  # a device this machine lacks: refused at once
        denoise.form.device.value = "cuda:0"
        denoise.run_button.click()
        assert "cuda" in errors()[-1] and not denoise.running
        denoise.form.device.value = "cpu"

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        yield

    fit = engine.fit
    monkeypatch.setattr(engine, "fit", out_of_memory)  # fails in the worker
    configure(denoise, image=image)
    denoise.run_button.click()
    qtbot.waitUntil(lambda: not denoise.running, timeout=TIMEOUT_MS)
    assert "out of memory" in errors()[-1] and "tile size" in errors()[-1]
    assert denoise.progress.format() == "failed"
    assert len(viewer.layers) == n_layers + 3  # the three layers added here, no results

    def fails_later(*args, **kwargs):  # a failure mid-run keeps the result so far
        for k, snap in enumerate(fit(*args, **kwargs)):
            if k == 2:
                raise RuntimeError("the device went away")
            yield snap

    monkeypatch.setattr(engine, "fit", fails_later)
    configure(denoise, stop="none", steps=100, update_every=2)
    denoise.run_button.click()
    qtbot.waitUntil(lambda: not denoise.running, timeout=TIMEOUT_MS)
    assert "RuntimeError: the device went away" in errors()[-1]
    out = viewer.layers["scan [denoised]"]
    assert out.metadata["step"] == 4 and out.metadata["stop_reason"].startswith("failed: ")
    assert denoise.progress.format() == "failed" and out.data.shape == broken.shape

    assert len(errors()) == 9 + (not torch.cuda.is_available())
    np.testing.assert_array_equal(image.data, broken)
    for widget in (inpaint, denoise):
        assert_idle(widget)


def test_what_the_form_says_reaches_the_run(make_napari_viewer_proxy, qtbot, errors):
    from napari_dip.engine import PRESETS

    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    assert list(widget.form.preset.choices) == list(PRESETS)
    assert widget.form.precision.value == "auto"
    configure(widget, stop="none", steps=2, update_every=1, precision="float32")
    assert widget.form.perturb_std.value == round(1 / 30, 4)  # shown rounded ...
    (out,), _ = run_and_wait(qtbot, widget)
    meta = out.metadata
    preset = PRESETS["fast"]
    assert meta["perturb_std"] == preset.task("denoise").perturb_std == 1 / 30  # ... exact
    assert meta["lr"] == preset.lr and meta["precision"] == "float32"
    assert meta["stop"] == "none" and meta["best_step"] == 2 and meta["step"] == 2
    assert widget.plot.scores == [] and len(widget.plot.loss) == 2
    assert [name for name, _ in widget.plot.legend()] == ["loss", "chosen step", "stop"]

    configure(widget, perturb_std=0.05, lr=0.002)  # typed values are passed as they are
    (second,), _ = run_and_wait(qtbot, widget)
    assert second.metadata["perturb_std"] == 0.05 and second.metadata["lr"] == 0.002
    assert second.name == "img [denoised 2]"  # a new layer: the first result stays
    assert out in viewer.layers and out.metadata["perturb_std"] == 1 / 30

    # the noise model and the camera
    noisy, _ = samples.photon_limited((40, 48), photons=10, seed=0)
    form = widget.form
    configure(widget, image=viewer.add_image(noisy, name="counts"), steps=6, update_every=3)
    configure(widget, noise="poisson")
    assert not form.gain.enabled  # estimated by default
    configure(widget, estimate_camera=False, gain=1.0, offset=100.0)
    (out,), _ = run_and_wait(qtbot, widget)
    assert out.data.dtype == np.uint16 and out.data.shape == noisy.shape
    assert out.metadata["noise"] == "poisson" and out.metadata["step"] == 6
    assert (out.metadata["gain"], out.metadata["offset"]) == (1.0, 100.0)
    assert out.metadata["camera"] == {"gain": 1.0, "offset": 100.0, "read_noise": 0.0}

    configure(widget, offset=1000.0)  # above the data: negative photon counts
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert "negative photon counts" in errors()[-1] and len(errors()) == 1
    assert_idle(widget)
    assert not form.read_noise.enabled  # the controls keep their own state after a run


def test_estimate_shows_the_run_time_and_adds_nothing(make_napari_viewer_proxy, qtbot, errors):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=300)
    widget.estimate_button.click()
    assert widget.estimating  # in a worker; nothing else starts meanwhile
    assert not widget.estimate_button.isEnabled() and not widget.run_button.isEnabled()
    widget.run_button.click()
    assert not widget.running
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)

    text = widget.estimate_label.text()
    assert text.startswith("estimate: ") and " s" in text and "(300 steps)" in text, text
    assert [layer.name for layer in viewer.layers] == ["img"] and errors() == []
    assert_idle(widget)
    widget.form.steps.value = 200  # the estimate was for other settings
    assert widget.estimate_label.text() == ""

    configure(widget, stop="none", steps=50)  # no stop rule: no "typically"
    widget.estimate_button.click()
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)
    assert widget.estimate_label.text().startswith("estimate: about "), widget.estimate_label.text()
    assert "(50 steps)" in widget.estimate_label.text()

    widget.estimate_button.click()
    widget.form.seed.value = 3  # a change while it runs makes its result stale
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)
    assert "estimate again" in widget.estimate_label.text()


def _pythons(*runs: tuple[str, dict[str, str]]) -> list[subprocess.CompletedProcess]:
    """Run each ``(code, extra environment)`` in a fresh interpreter, all at once, without
    the caller's OMP_WAIT_POLICY."""
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=base | env, stderr=subprocess.PIPE, text=True
        )
        for code, env in runs
    ]
    done = [subprocess.CompletedProcess(p.args, p.wait(), stderr=p.communicate()[1]) for p in procs]
    for run in done:
        assert run.returncode == 0, run.stderr
    return done


def test_the_widget_package_imports_no_torch_and_sets_a_passive_omp_wait_policy():
    plain, told, late = _pythons(
        (  # the library leaves the environment alone; the widget sets it (and says so) ...
            "import os, sys, logging; logging.basicConfig(level=logging.INFO); "
            "import napari_dip; assert 'OMP_WAIT_POLICY' not in os.environ; "
            "import napari_dip.widget.docks, napari_dip.widget.samples; "
            "assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'; "
            "assert 'torch' not in sys.modules, 'torch imported'",
            {},
        ),
        (  # ... a user's value wins ...
            "import os, napari_dip.widget; assert os.environ['OMP_WAIT_POLICY'] == 'ACTIVE'",
            {"OMP_WAIT_POLICY": "ACTIVE"},
        ),
        (  # ... and once torch is imported it is too late to matter: left alone
            "import os, torch, napari_dip.widget; assert 'OMP_WAIT_POLICY' not in os.environ",
            {},
        ),
    )
    assert "OMP_WAIT_POLICY=PASSIVE" in plain.stderr
    assert "OMP_WAIT_POLICY" not in told.stderr + late.stderr
