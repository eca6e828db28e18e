"""napari under stress: the viewer closed mid-run, layers deleted mid-run, Stop while tiles
hand over, multiscale data, a 4D time-lapse and data replaced between Estimate and Run.

Every viewer is a ``make_napari_viewer_proxy`` (touching it off the main thread raises), and
pytest-qt fails a test whose Qt slots raise. Two docks running at once and Run pressed twice
are in ``test_widget_threads.py`` and ``test_widget_guide.py``.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
from qtpy.QtCore import QThreadPool
from scipy import ndimage

import napari_dip
from conftest import dock
from napari_dip import samples
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

RUN = {"device": "cpu", "stop": "none", "preset": "fast"}


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Python threads started since ``before`` and still alive, but Qt's idle pool threads
    (Python sees them as dummies: they ran a worker and wait for the next, nothing running)."""
    return [
        t
        for t in threading.enumerate()
        if t not in before and not isinstance(t, threading._DummyThread)
    ]


def test_the_viewer_closed_mid_run_stops_the_worker_within_a_second(
    make_napari_viewer_proxy, qtbot, caplog, errors
):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32, seed=3)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    # two ensemble members side by side: the run has piece threads of its own
    configure(widget, uncertainty=True, ensemble=2, workers=2, stop="none", steps=100_000)
    before = set(threading.enumerate())
    widget.run_button.click()
    qtbot.waitUntil(lambda: "img [denoised]" in viewer.layers, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(piece_threads()) == 2, timeout=TIMEOUT_MS)
    job, worker = widget._job, widget._worker
    finished: list[float] = []
    worker.finished.connect(lambda: finished.append(time.perf_counter()))

    with caplog.at_level(logging.WARNING):
        viewer.close()  # mid-run
        closed = time.perf_counter()
        assert job.stop.is_set()
        qtbot.waitUntil(job.done.is_set, timeout=5000)  # its generator ended, threads joined
        done = time.perf_counter()
        qtbot.waitUntil(lambda: bool(finished), timeout=5000)  # and the slots after it ran
    assert done - closed < 1.0, done - closed
    assert finished[0] - closed < 1.0
    assert not piece_threads() and not _new_threads(before)
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=1000)
    assert [r for r in caplog.records if r.name.startswith("napari_dip")] == []
    assert errors() == []
    assert threads_a_new_thread_gets() == 1


def test_the_input_and_the_result_deleted_mid_run(make_napari_viewer_proxy, qtbot, errors):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32, seed=5)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, stop="none", steps=30, update_every=3)
    steps: list[int] = []
    show = widget.panel.show_snapshot

    def deleting(snap, noun, stopping):
        show(snap, noun, stopping)
        steps.append(snap.step)
        if snap.step == 3:
            viewer.layers.remove("img")  # the input: the run holds its array
        if snap.step == 12:
            viewer.layers.remove("img [denoised]")  # the result: the next update remakes it

    widget.panel.show_snapshot = deleting
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert steps[-1] == 30 and errors() == []
    assert [layer.name for layer in viewer.layers] == ["img [denoised]"]
    out = viewer.layers["img [denoised]"]
    assert out.metadata["step"] == 30 and out.metadata["source"] == "img"
    np.testing.assert_array_equal(out.data, napari_dip.denoise(noisy, steps=30, **RUN))
    assert widget.form.image.value.name == out.name  # the only image left
    assert_idle(widget)

    viewer.layers.clear()
    widget.run_button.click()  # nothing to restore: said, and nothing breaks
    assert "choose an image layer" in errors()[-1] and not widget.running


def test_stop_during_a_tile_hand_over(make_napari_viewer_proxy, qtbot, errors):
    viewer = make_napari_viewer_proxy()
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(size=(112, 112)), 3)
    texture = np.clip((field - field.min()) / np.ptp(field) * 175 + 40, 0, 255)
    texture = np.clip(texture + rng.normal(0, 20, texture.shape), 0, 255).astype(np.uint8)
    viewer.add_image(texture, name="big")
    widget = dock(viewer, "Denoise")
    configure(widget, stop="none", steps=6, update_every=1, tile=64, workers=2)  # 2 × 2 tiles
    shown = watch_progress(widget)
    ended: list = []
    show = widget.panel.show_snapshot

    def stop_at_hand_over(snap, noun, stopping):
        show(snap, noun, stopping)
        if snap.piece_stop_reason is not None and not ended:
            ended.append(snap)
            widget.stop()  # right as the first tile ends, before the next is handed out

    widget.panel.show_snapshot = stop_at_hand_over
    widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert ended and ended[0].pieces_done == 1, ended
    assert any("tiles 1–2/4" in text for text in shown), shown  # side by side before
    out = viewer.layers["big [denoised]"]
    meta = out.metadata
    assert meta["stop_reason"] == "stopped on request" and meta["failures"] == []
    assert meta["stopped"] and meta["tiles"] == 4 and meta["workers"] == 2
    assert widget.progress.format().startswith("stopped")
    assert widget.progress.value() < widget.progress.maximum()
    assert np.abs(out.data[:40, :40].astype(float) - texture[:40, :40]).mean() > 5  # restored
    np.testing.assert_array_equal(out.data[64:, :], texture[64:, :])  # never handed out
    np.testing.assert_array_equal(viewer.layers["big"].data, texture)
    assert not piece_threads() and errors() == []
    assert threads_a_new_thread_gets() == 1
    assert_idle(widget)


def test_multiscale_layers_are_refused_clearly_and_the_viewer_stays_usable(
    make_napari_viewer_proxy, qtbot, errors
):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32, seed=1)
    pyramid = [np.tile(noisy, (2, 2)), noisy]
    viewer.add_image(pyramid, name="pyramid", multiscale=True)
    widget = dock(viewer, "Denoise")
    assert widget.form.image.value.name == "pyramid"
    configure(widget, stop="none", steps=2, update_every=2)
    widget.run_button.click()
    assert "'pyramid' is multiscale" in errors()[-1] and not widget.running
    widget.estimate_button.click()
    assert "multiscale" in errors()[-1] and not widget.estimating
    inpaint = dock(viewer, "Inpaint")
    inpaint.form.image.value = viewer.add_image(noisy, name="plain")
    holes = np.zeros((64, 64), np.int32)
    holes[:8] = 1
    inpaint.mask.value = viewer.add_labels([holes, holes[::2, ::2]], name="pyr", multiscale=True)
    inpaint.run_button.click()
    assert "mask 'pyr' is multiscale" in errors()[-1] and not inpaint.running
    assert len(errors()) == 3

    viewer.dims.ndisplay = 3  # the viewer still works: views change, and a plain layer runs
    viewer.dims.ndisplay = 2
    configure(widget, image=viewer.layers["plain"])
    (out,), _ = run_and_wait(qtbot, widget)
    assert out.name == "plain [denoised]" and out.metadata["step"] == 2
    assert_idle(widget)


@pytest.mark.parametrize("mode", ["slices", "volume"])
def test_a_4d_time_lapse_restores_every_frame_with_axes_from_its_labels(
    make_napari_viewer_proxy, qtbot, mode
):
    viewer = make_napari_viewer_proxy()
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:4, :16, :16]
    clean = np.stack([1000 + 400 * np.sin((xx + 3 * t + zz) / 4) * np.cos(yy / 5) for t in (0, 1)])
    movie = np.clip(clean + rng.normal(0, 150, clean.shape), 0, None).astype(np.uint16)
    layer = viewer.add_image(movie, name="movie", scale=(10, 2, 0.5, 0.5))
    layer.axis_labels = ("t", "z", "y", "x")
    widget = dock(viewer, "Denoise")
    assert widget.form.axes.native.placeholderText() == "TZYX"  # the guess from the labels
    configure(widget, mode=mode, stop="none", steps=4, update_every=2)
    seen = watch_progress(widget)
    (out,), _ = run_and_wait(qtbot, widget)

    assert out.data.shape == movie.shape and out.data.dtype == np.uint16
    np.testing.assert_allclose(out.scale, layer.scale)
    assert tuple(out.axis_labels) == ("t", "z", "y", "x")
    meta = out.metadata
    assert meta["axes"] == "TZYX" and meta["mode"] == mode
    assert meta["parts"] == (8 if mode == "slices" else 2)
    for t in range(2):  # every frame (every slice of it) restored
        for z in range(4):
            assert not np.array_equal(out.data[t, z], movie[t, z]), (t, z)
    noun = "slice" if mode == "slices" else "volume"
    assert any(text.startswith(f"{noun} {meta['parts']}/{meta['parts']}") for text in seen)
    expected = napari_dip.denoise(movie, axes="TZYX", mode=mode, steps=4, **RUN)
    np.testing.assert_array_equal(out.data, expected)


def test_data_replaced_between_estimate_and_run(make_napari_viewer_proxy, qtbot, errors):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32, seed=6)
    stack = np.stack([noisy, noisy[::-1], noisy[:, ::-1]])
    layer = viewer.add_image(stack, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, mode="slices", stop="none", steps=6, update_every=3)
    widget.estimate_button.click()
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)
    assert widget.estimate_label.text().startswith("estimate per slice")

    other = samples.noisy(size=None, seed=7)[0][:24, :40]
    layer.data = other  # 2D now, another shape: the estimate is stale, no stack controls
    assert widget.estimate_label.text() == ""
    assert not widget.form.mode.native.isVisibleTo(widget)
    (out,), _ = run_and_wait(qtbot, widget)  # the run takes the data as it is now
    assert out.data.shape == (24, 40) and "axes" not in out.metadata
    np.testing.assert_array_equal(out.data, napari_dip.denoise(other, steps=6, **RUN))

    widget.estimate_button.click()  # replaced while the estimate runs: it says so
    layer.data = noisy
    qtbot.waitUntil(lambda: not widget.estimating, timeout=TIMEOUT_MS)
    assert "estimate again" in widget.estimate_label.text()

    inpaint = dock(viewer, "Inpaint")
    holes = np.zeros((32, 32), np.int32)
    holes[4:8] = 1
    inpaint.mask.value = viewer.add_labels(holes, name="holes")
    inpaint.form.image.value = layer
    configure(inpaint, stop="none", steps=2)
    layer.data = other  # the mask no longer fits: refused, clearly
    inpaint.run_button.click()
    assert "mask 'holes' has shape (32, 32)" in errors()[-1] and not inpaint.running
    assert len(errors()) == 1
    for dock_widget in (widget, inpaint):
        assert_idle(dock_widget)
