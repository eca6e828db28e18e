"""The dock guides: a short first screen, Advanced folded with explained options, stack controls
only for stacks, the quality ↔ speed choice, keyboard shortcuts, a bar with a fixed scale,
and one run per Run however often it is pressed.
"""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from conftest import dock
from napari_dip import samples
from napari_dip.options import NOISES, OPTIONS
from test_widget_support import TIMEOUT_MS, assert_idle, configure

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def shown(widget, container) -> list[str]:
    """The labels (or texts) of the controls of ``container`` the dock would show."""
    return [
        w.label or getattr(w, "text", "")
        for w in container
        if w.native.isVisibleTo(widget) or w.native.isVisibleTo(container.native)
    ]


def test_the_first_screen_is_short_and_the_rest_is_folded_and_explained(
    make_napari_viewer_proxy,
):
    viewer = make_napari_viewer_proxy()
    stack = viewer.add_image(np.zeros((3, 32, 32), np.uint8), name="stack")
    plane = viewer.add_image(np.zeros((32, 32), np.uint8), name="plane")
    denoise = dock(viewer, "Denoise")
    assert denoise.form.image.value.name == "plane"  # the selected layer
    form = denoise.form
    assert shown(denoise, form.first) == ["image", "quality", "noise model"]
    assert not form.advanced.isExpanded()  # Advanced is folded at first
    assert form.advanced.content().maximumHeight() == 0  # folded: no room for its controls
    inpaint, upscale = dock(viewer, "Inpaint"), dock(viewer, "Super-resolve")
    assert shown(inpaint, inpaint.form.first) == ["image", "mask", "quality", "noise model"]
    assert shown(upscale, upscale.form.first) == ["image", "factor", "quality", "noise model"]
    for widget in (denoise, inpaint, upscale):
        assert [b.text() for b in (widget.run_button, widget.stop_button)] == ["Run", "Stop"]
        assert widget.estimate_button.isVisibleTo(widget)

    # choices, labels and tooltips come from the one options table
    assert [c for c in form.noise.choices] == [c.name for c in NOISES]
    assert form.noise.native.itemText(1) == NOISES[1].label
    assert OPTIONS["noise"].help[1:] in form.noise.tooltip
    for name in ("steps", "seed", "update_every", "lr", "perturb_std", "tv_weight", "tile"):
        tip = getattr(form, name).tooltip
        assert OPTIONS[name].help[1:] in tip and "When to change it" in tip, name
    assert form.lr.label == "learning rate" and form.update_every.label == "update every"
    assert "When to change it" in form.stop.tooltip and "ES-WMV" in form.stop.tooltip
    assert "Ctrl" in denoise.run_button.toolTip() and "Esc" in denoise.stop_button.toolTip()

    form.advanced.expand(animate=False)
    advanced = shown(denoise, form.advanced_box)
    assert advanced[:5] == [
        "preset",
        "stop",
        "fuse with a classical denoiser",
        "steps",
        "update every",
    ]
    assert "restore" not in advanced and "axes" not in advanced  # a 2D layer: no stack controls
    assert "keep every update as a stack layer" in advanced
    # the camera is for the photon-count models only ("auto" may choose one)
    assert form.noise.value == "auto" and form.estimate_camera.enabled
    assert not form.sigma.enabled and "sigma" not in form.run_options()
    form.noise.value = "gaussian"
    assert not form.estimate_camera.enabled and not form.gain.enabled
    assert form.sigma.enabled and "sigma" not in form.run_options()  # 0: estimated
    form.sigma.value = 12.5  # a known noise level
    assert form.run_options()["sigma"] == 12.5
    form.noise.value = "poisson"
    assert not form.sigma.enabled and "sigma" not in form.run_options()
    assert form.estimate_camera.enabled and not form.gain.enabled
    form.estimate_camera.value = False
    assert form.gain.enabled and form.offset.enabled and not form.read_noise.enabled
    assert denoise.form.run_options() | {"gain": 1.0, "offset": 0.0} == denoise.form.run_options()

    # the stack controls (and a note on the first screen) only for a > 2D layer
    assert not form.stack_note.native.isVisibleTo(denoise)
    form.image.value = stack
    assert shown(denoise, form.first)[:2] == ["image", ""]  # the note, under the image
    assert "current slice" in form.stack_note.value  # says what is restored
    assert shown(denoise, form.advanced_box)[:2] == ["restore", "axes"]
    form.mode.value = "slices"
    assert "every slice" in form.stack_note.value
    assert form.warm_start.native.isVisibleTo(denoise) and form.run_options()["warm_start"]
    form.warm_start.value = False  # every slice from scratch: what the run is told
    assert form.run_options()["warm_start"] is False
    form.image.value = plane
    assert not form.warm_start.native.isVisibleTo(denoise)
    assert not form.mode.native.isVisibleTo(denoise) and not form.axes.native.isVisibleTo(denoise)
    assert not form.stack_note.native.isVisibleTo(denoise)
    assert form.axes.native.placeholderText() == "ZYX"  # the guess, shown in grey

    # a layer that says its camera (the photon-limited sample does) sets the noise model
    counts = np.full((32, 32), 120, np.uint16)
    meta = {"noise": "poisson", "gain": 2.0, "offset": 100.0}
    form.image.value = viewer.add_image(counts, name="counts", metadata=meta)
    assert form.noise.value == "poisson" and not form.estimate_camera.value
    assert form.run_options()["gain"] == 2.0 and form.run_options()["offset"] == 100.0


def test_the_quality_choice_sets_preset_stop_and_steps_and_follows_them(qtbot):
    from napari_dip.engine import PRESETS
    from napari_dip.widget.form import Form

    form = Form(lambda kind: lambda widget: [], "inpaint", [])  # no layers needed
    qtbot.addWidget(form.advanced)
    fast, paper = PRESETS["fast"].task("inpaint").steps, PRESETS["paper"].task("inpaint").steps
    expected = {
        "fast": ("fast", "auto", fast),
        "balanced": ("fast", "auto", 3 * fast),  # the library's default
        "best": ("paper", "auto", 3 * paper),
    }
    assert form.quality.value == "balanced"
    for quality, settings in expected.items():
        form.quality.value = quality
        assert (form.preset.value, form.stop.value, form.steps.value) == settings, quality
    form.stop.value = "none"  # changed by hand: custom, with that rule's default steps
    assert form.quality.value == "custom" and form.steps.value == paper
    form.quality.value = "custom"  # keeps Advanced as it is
    assert (form.preset.value, form.stop.value) == ("paper", "none")
    form.preset.value, form.stop.value = "fast", "auto"
    assert form.quality.value == "balanced"  # the same settings: that quality again
    form.steps.value = fast
    assert form.quality.value == "fast"
    assert "discrepancy" not in form.stop.choices  # denoising only


def test_ctrl_return_runs_and_escape_stops_only_with_the_focus_in_the_dock(
    make_napari_viewer, qtbot
):
    viewer = make_napari_viewer(show=True)
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, stop="none", steps=100_000)
    window = viewer.window._qt_window
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)

    canvas = viewer.window._qt_viewer.canvas.native  # focus outside the dock: nothing
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert not widget.running

    target = widget.form.image.native
    target.setFocus()
    qtbot.keyClick(target, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert widget.running
    assert widget.stop_button.hasFocus()  # the form is off now; the focus stays in the dock
    qtbot.waitUntil(lambda: "img [denoised]" in viewer.layers, timeout=TIMEOUT_MS)
    qtbot.keyClick(widget.stop_button, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert viewer.layers["img [denoised]"].metadata["stop_reason"] == "stopped on request"
    assert_idle(widget)


def test_the_bar_keeps_its_scale_and_run_pressed_twice_runs_once(make_napari_viewer_proxy, qtbot):
    viewer = make_napari_viewer_proxy()
    noisy, _ = samples.noisy(size=32)
    viewer.add_image(noisy, name="img")
    widget = dock(viewer, "Denoise")
    configure(widget, stop="none", steps=20, update_every=4)
    seen: list[tuple[int, int, str]] = []
    widget.progress.valueChanged.connect(
        lambda v: seen.append((widget.progress.maximum(), v, widget.progress.format()))
    )
    widget.run_button.click()
    worker = widget._worker
    widget.run_button.click()  # pressed again: the button is off ...
    widget.run()  # ... and a shortcut's run is ignored while one runs
    assert widget._worker is worker
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)
    assert [layer.name for layer in viewer.layers] == ["img", "img [denoised]"]
    assert viewer.layers["img [denoised]"].metadata["step"] == 20
    maxima = {m for m, _, _ in seen}
    values = [v for _, v, _ in seen]
    assert maxima == {widget.progress.maximum()}  # never rescaled during the run
    assert values == sorted(values) and values[-1] == widget.progress.maximum()
    texts = [t for _, _, t in seen if t.startswith("step")]
    assert texts and all(t.startswith("step ") for t in texts)
    assert any("left" in t for t in texts), texts  # the time left, once known
