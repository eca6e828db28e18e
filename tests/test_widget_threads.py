"""The docks and their threads: runs side by side, back-pressure, an input replaced mid-run,
tiles fitted side by side and a lazy (dask) layer read tile by tile (a closed viewer and the
other stress cases: ``test_widget_stress.py``).

Every viewer is a ``make_napari_viewer_proxy``: touching it off the main thread raises.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import napari_dip
from conftest import dock
from napari_dip import psf, samples
from test_widget_support import (
    TIMEOUT_MS,
    assert_idle,
    configure,
    piece_threads,
    run_and_wait,
    threads_a_new_thread_gets,
    watch_progress,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE, TILE = 112, 64  # 2 × 2 tiles of 64 px (overlap 8)
RUN = {"device": "cpu", "stop": "none", "preset": "fast"}


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    """A noisy, statistically uniform texture (smoothed noise), 112 × 112 uint8."""
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(size=(SIZE, SIZE)), 3)
    clean = (field - field.min()) / np.ptp(field) * 175 + 40
    return np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)


def test_three_docks_running_at_once_give_what_each_gives_alone(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(sigma=25, size=32, seed=2)
    broken, mask, _ = samples.damaged(fraction=0.3, size=32, seed=1)
    blurred = ndimage.gaussian_filter(samples.grey_crop(size=32).astype(np.float32), 1.5)
    viewer.add_image(noisy, name="noisy")
    viewer.add_image(broken, name="broken")
    viewer.add_labels(mask.astype(np.int32), name="holes")
    viewer.add_image(blurred, name="blurred")
    denoise, inpaint = dock(viewer, "Denoise"), dock(viewer, "Inpaint")
    deconvolve = dock(viewer, "Deconvolve")
    configure(denoise, image=viewer.layers["noisy"], stop="none", steps=15)
    configure(inpaint, image=viewer.layers["broken"], stop="none", steps=15)
    configure(deconvolve, image=viewer.layers["blurred"], stop="none", steps=15)
    for widget in (denoise, inpaint, deconvolve):
        widget.run_button.click()
    assert denoise.running and inpaint.running and deconvolve.running
    qtbot.waitUntil(
        lambda: not (denoise.running or inpaint.running or deconvolve.running), timeout=TIMEOUT_MS
    )

    alone = napari_dip.denoise(noisy, steps=15, **RUN)
    np.testing.assert_array_equal(viewer.layers["noisy [denoised]"].data, alone)
    alone = napari_dip.inpaint(broken, mask, steps=15, **RUN)
    np.testing.assert_array_equal(viewer.layers["broken [inpainted]"].data, alone)
    alone = napari_dip.deconvolve(blurred, psf.gaussian_psf(1.5), steps=15, **RUN)
    np.testing.assert_array_equal(viewer.layers["blurred [deconvolved]"].data, alone)
    assert len(viewer.layers) == 7
    for widget in (denoise, inpaint, deconvolve):
        assert_idle(widget)


def test_updates_never_pile_up_while_the_main_thread_is_busy(
    make_napari_viewer_proxy, qtbot, monkeypatch
):
    import time

    from napari_dip.widget import results

    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, stop="none", steps=12, update_every=1)
    ahead: list[int] = []
    show = results.ResultLayer.show

    def slow_show(self, update):  # a busy main thread: 30 ms per update
        ahead.append(widget._job.updates - len(ahead))  # yielded, not yet taken
        time.sleep(0.03)
        show(self, update)

    monkeypatch.setattr(results.ResultLayer, "show", slow_show)
    (out,), _ = run_and_wait(qtbot, widget)
    assert len(ahead) == 12 and set(ahead) == {1}  # the worker waited for every one
    assert out.metadata["step"] == 12


def test_an_input_replaced_mid_run_is_left_alone(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32, seed=3)
    layer = viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, stop="none", steps=20, update_every=5)
    widget.run_button.click()
    qtbot.waitUntil(lambda: "img [denoised]" in viewer.layers, timeout=TIMEOUT_MS)
    layer.data = np.zeros((20, 24), np.uint8)  # another image, another shape
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)

    out = viewer.layers["img [denoised]"]
    assert out.metadata["step"] == 20 and out.metadata["source"] == "img"
    np.testing.assert_array_equal(out.data, napari_dip.denoise(noisy, steps=20, **RUN))
    assert layer.data.shape == (20, 24)  # the new data is the user's, untouched
    assert_idle(widget)


def _tiled_denoise_widget(viewer, data, steps: int, workers: int = 1):
    """The Denoise dock on ``data`` as layer "big", in TILE-px tiles, without a stop rule;
    and the list its progress texts are collected in."""
    viewer.add_image(data, name="big")
    widget = dock(viewer, "Denoise")
    configure(widget, stop="none", steps=steps, update_every=1, tile=TILE, workers=workers)
    return widget, watch_progress(widget)


def test_a_dask_layer_is_restored_in_tiles(make_napari_viewer_proxy, qtbot, texture):
    import dask.array as da  # declared in the testing extra: a missing dask fails, not skips

    viewer = make_napari_viewer_proxy()
    widget, shown = _tiled_denoise_widget(viewer, da.from_array(texture, chunks=32), steps=2)
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    out = viewer.layers["big [denoised]"]
    assert isinstance(out.data, np.ndarray)
    assert out.data.shape == texture.shape and out.data.dtype == np.uint8
    assert out.metadata["tile"] == TILE and out.metadata["tiles"] == 4
    assert out.metadata["stop_reason"].startswith("all 4 tiles done")
    assert any(text.startswith("tile 2/4 · step") for text in shown), shown
    assert widget.progress.format().startswith("done: 4 tiles · 8 steps")
    assert widget.progress.value() == widget.progress.maximum()


def test_stop_ends_tiles_running_side_by_side(make_napari_viewer_proxy, qtbot, texture):
    viewer = make_napari_viewer_proxy()
    # two tiles at once through the form; each gets its share (1) of the one torch thread
    widget, shown = _tiled_denoise_widget(viewer, texture, steps=100_000, workers=2)
    widget.run_button.click()
    qtbot.waitUntil(lambda: any("tiles 1–2/4" in text for text in shown), timeout=TIMEOUT_MS)
    widget.stop_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    out = viewer.layers["big [denoised]"]
    assert out.metadata["stop_reason"] == "stopped on request" and out.metadata["workers"] == 2
    assert np.abs(out.data[:40, :40].astype(float) - texture[:40, :40]).mean() > 5  # restored
    np.testing.assert_array_equal(out.data[TILE:, TILE:], texture[TILE:, TILE:])  # not begun
    np.testing.assert_array_equal(viewer.layers["big"].data, texture)
    assert not piece_threads()
    assert threads_a_new_thread_gets() == 1  # torch's default is the caller's count again
