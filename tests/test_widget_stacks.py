"""The dock widgets on stacks in a real napari viewer: every slice, 3D volumes, Stop, axes.

Tiny stacks (a few 16–32 pixel slices) and a handful of steps keep each run to seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import dock
from test_widget_support import TIMEOUT_MS, configure, run_and_wait, watch_progress

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def stack16(depth: int = 3, size: int = 32, sigma: float = 80) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    clean = np.stack([1000 + 500 * np.sin((xx + 3 * z) / 5) * np.cos(yy / 7) for z in range(depth)])
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, None).astype(np.uint16)


def clean16(depth: int = 3, size: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.stack([1000 + 500 * np.sin((xx + 3 * z) / 5) * np.cos(yy / 7) for z in range(depth)])


def test_every_slice_is_restored_with_dtype_shape_and_geometry(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    stack = stack16(depth=2, sigma=250)  # very noisy: a few steps already help
    layer = viewer.add_image(stack, name="cells", scale=(2.0, 0.5, 0.5), translate=(1, 2, 3))
    layer.axis_labels = ("z", "y", "x")
    layer.units = ("um", "um", "um")
    widget = dock(viewer, "Denoise")
    configure(widget, mode="slices", stop="none", steps=20, update_every=10)
    seen = watch_progress(widget)
    (out,), _ = run_and_wait(qtbot, widget)

    assert out.name == "cells [denoised]"
    assert out.data.shape == stack.shape and out.data.dtype == np.uint16
    np.testing.assert_allclose(out.scale, layer.scale)
    np.testing.assert_allclose(out.translate, layer.translate)
    assert tuple(out.axis_labels) == ("z", "y", "x")
    assert tuple(map(str, out.units)) == ("micrometer",) * 3
    meta = out.metadata
    assert meta["axes"] == "ZYX" and meta["mode"] == "slices" and meta["parts"] == 2
    assert len(meta["part_stop_reasons"]) == 2 and meta["step"] == 40
    # every slice restored: closer to the clean stack than the input, slice by slice
    clean = clean16(depth=2)
    for k in range(2):
        error_in = np.abs(stack[k].astype(float) - clean[k]).mean()
        assert np.abs(out.data[k].astype(float) - clean[k]).mean() < 0.8 * error_in, k
    assert any(t.startswith("slice 2/2 · step") for t in seen), seen
    assert widget.progress.format().startswith("done: 2 slices · 40 steps")
    np.testing.assert_array_equal(layer.data, stack)  # the input layer is untouched


def test_volume_super_resolution_scales_y_and_x_only(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    stack = stack16(depth=4, size=16).astype(np.float32)
    layer = viewer.add_image(stack, name="vol", scale=(3.0, 1.0, 1.0), translate=(0, 10, 20))
    widget = dock(viewer, "Super-resolve")
    configure(widget, mode="volume", factor=2, axes="zyx", stop="none", steps=3, update_every=3)
    (out,), _ = run_and_wait(qtbot, widget)

    assert out.data.shape == (4, 32, 32) and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, (3.0, 0.5, 0.5))
    np.testing.assert_allclose(out.translate, (0, 10 - 0.25, 20 - 0.25))
    assert out.metadata["mode"] == "volume" and out.metadata["parts"] == 1
    assert widget.progress.format().startswith("done at step 3")
    np.testing.assert_array_equal(layer.data, stack)


def test_stop_keeps_the_finished_frames_and_the_current_frames_best(
    make_napari_viewer_proxy, qtbot
):
    viewer = make_napari_viewer_proxy()
    stack = stack16(depth=3)
    movie = viewer.add_image(stack, name="movie")
    movie.axis_labels = ("t", "y", "x")
    widget = dock(viewer, "Denoise")
    configure(widget, mode="slices", stop="none", steps=100_000, update_every=5)
    assert "every slice/frame" in widget.form.stack_note.value
    seen = watch_progress(widget)
    widget.run_button.click()

    qtbot.waitUntil(lambda: "movie [denoised]" in viewer.layers, timeout=TIMEOUT_MS)
    widget.stop_button.click()  # during the first frame
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    out = viewer.layers["movie [denoised]"]
    assert out.metadata["stopped"] and out.metadata["axes"] == "TYX"
    assert out.data.shape == stack.shape
    assert not np.array_equal(out.data[0], stack[0])  # the current frame's best so far
    np.testing.assert_array_equal(out.data[1:], stack[1:])  # not reached: the input
    assert any(t.startswith("frame 1/3 · step") for t in seen), seen  # a time-lapse: frames


def test_a_mask_per_slice_inpaints_every_slice(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    holes = np.zeros((2, 16, 16), np.int32)
    holes[:, 4:8, 4:12] = 1
    missing = holes.astype(bool)
    broken = stack16(depth=2, size=16)
    broken[missing] = 0  # lost
    viewer.add_image(broken, name="s")
    viewer.add_labels(holes, name="holes")
    widget = dock(viewer, "Inpaint")
    configure(widget, mode="slices", stop="none", steps=20, update_every=20)
    (out,), _ = run_and_wait(qtbot, widget)
    clean = clean16(depth=2, size=16)
    error = np.abs(out.data[missing].astype(float) - clean[missing]).mean()
    assert error < 0.2 * clean[missing].mean()  # filled with about the right values
    assert out.metadata["parts"] == 2


def test_axes_errors_and_the_estimate_of_slices_tiles_and_volumes(
    make_napari_viewer_proxy, qtbot, errors
):
    viewer = make_napari_viewer_proxy()
    viewer.add_image(stack16(depth=3, size=32), name="s")
    widget = dock(viewer, "Denoise")
    configure(widget, mode="volume", axes="TYX", stop="none", steps=3)
    widget.run_button.click()
    assert "needs a Z axis" in errors()[-1]
    widget.form.axes.value = "ZY"
    widget.run_button.click()
    assert "2 letters" in errors()[-1]
    widget.estimate_button.click()  # the estimate refuses what the run refuses
    assert "2 letters" in errors()[-1]
    widget.form.axes.value = "ZYX"
    widget.estimate_button.click()  # a volume cannot be timed: said, not attempted
    assert "not available" in widget.estimate_label.text() and not widget.estimating
    assert not widget.running and len(viewer.layers) == 1 and len(errors()) == 3

    configure(widget, mode="slices", stop="none", steps=100, tile=16)
    widget.estimate_button.click()
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)
    per_slice, total = widget.estimate_label.text().split("\n")
    # 32 pixels in 16-pixel tiles overlapping by 2: 3 × 3 tiles per slice
    assert per_slice.startswith("estimate per slice: about ")
    assert per_slice.endswith("(900 steps), over 9 tiles"), per_slice
    assert total.startswith("3 slices × 9 tiles each, in all: about ") and "(2700 steps)" in total
    viewer.layers.clear()  # no image layer left
    widget.estimate_button.click()
    assert "choose an image layer" in errors()[-1] and len(errors()) == 4
