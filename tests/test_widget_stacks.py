"""The dock widgets on stacks in a real napari viewer: every slice, 3D volumes, Stop, axes.

Tiny stacks (a few 16–32 pixel slices) and a handful of steps keep each run to seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import dock

TIMEOUT_MS = 60_000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def configure(widget, **values) -> None:
    widget.preset.value = "fast"
    widget.device.value = "cpu"
    widget.stop_rule.value = "none"
    for key, value in values.items():
        getattr(widget, key).value = value


def run_and_wait(qtbot, widget):
    viewer = widget._viewer
    before = list(viewer.layers)
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    return [layer for layer in viewer.layers if layer not in before]


def stack16(depth: int = 3, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    clean = np.stack([1000 + 500 * np.sin((xx + 3 * z) / 5) * np.cos(yy / 7) for z in range(depth)])
    return np.clip(clean + rng.normal(0, 80, clean.shape), 0, None).astype(np.uint16)


def test_every_slice_keeps_dtype_shape_and_geometry(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = stack16()
    layer = viewer.add_image(stack, name="cells", scale=(2.0, 0.5, 0.5), translate=(1, 2, 3))
    layer.axis_labels = ("z", "y", "x")
    layer.units = ("um", "um", "um")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=6, update_every=3, mode="slices")
    added = run_and_wait(qtbot, widget)

    assert [a.name for a in added] == ["cells [denoised]"]
    out = added[0]
    assert out.data.shape == stack.shape and out.data.dtype == np.uint16
    np.testing.assert_allclose(out.scale, layer.scale)
    np.testing.assert_allclose(out.translate, layer.translate)
    assert (
        tuple(out.axis_labels) == ("z", "y", "x")
        and tuple(map(str, out.units)) == ("micrometer",) * 3
    )
    meta = out.metadata
    assert meta["axes"] == "ZYX" and meta["mode"] == "slices" and meta["pieces"] == 3
    assert len(meta["piece_stop_reasons"]) == 3 and meta["step"] == 18
    assert not np.array_equal(out.data, stack)  # every slice was restored
    assert np.all(np.any(out.data != stack, axis=(1, 2)))
    np.testing.assert_array_equal(layer.data, stack)  # the input layer is untouched


def test_volume_super_resolution_scales_y_and_x_only(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = stack16(depth=4, size=16).astype(np.float32)
    layer = viewer.add_image(stack, name="vol", scale=(3.0, 1.0, 1.0), translate=(0, 10, 20))
    widget = dock(viewer, "Super-resolve")
    configure(widget, steps=3, update_every=3, mode="volume", factor=2, axes="zyx")
    (out,) = run_and_wait(qtbot, widget)

    assert out.data.shape == (4, 32, 32) and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, (3.0, 0.5, 0.5))
    np.testing.assert_allclose(out.translate, (0, 10 - 0.25, 20 - 0.25))
    assert out.metadata["mode"] == "volume" and out.metadata["pieces"] == 1
    np.testing.assert_array_equal(layer.data, stack)


def test_stop_keeps_the_finished_slices(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = stack16(depth=3)
    viewer.add_image(stack, name="movie")
    viewer.layers["movie"].axis_labels = ("t", "y", "x")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=100_000, update_every=5, mode="slices")
    widget.run_button.click()

    qtbot.waitUntil(lambda: "movie [denoised]" in viewer.layers, timeout=TIMEOUT_MS)
    widget.stop_button.click()  # during the first frame
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    out = viewer.layers["movie [denoised]"]
    assert out.metadata["stopped"] and out.metadata["axes"] == "TYX"
    assert out.data.shape == stack.shape
    assert not np.array_equal(out.data[0], stack[0])  # the current frame's best so far
    np.testing.assert_array_equal(out.data[1:], stack[1:])  # not reached: the input


def test_axes_override_and_its_errors(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    viewer.add_image(stack16(depth=2, size=16), name="s")
    widget = dock(viewer, "Denoise")
    configure(widget, steps=3, update_every=3, mode="volume", axes="TYX")
    widget.run_button.click()
    assert "needs a Z axis" in errors()[-1]
    widget.axes.value = "ZY"
    widget.run_button.click()
    assert "2 letters" in errors()[-1]
    assert not widget.running and len(viewer.layers) == 1
