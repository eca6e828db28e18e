"""Helpers the widget tests share (no tests here): set a dock's form, run it to its end,
watch its progress texts and the threads a run leaves."""

from __future__ import annotations

import threading

TIMEOUT_MS = 60_000


def configure(widget, steps: int | None = None, update_every: int = 5, **values) -> None:
    """Set the dock's form: the CPU, then ``values`` (control name → value, in order), then
    ``steps`` (after a stop rule or preset, which set their own default steps)."""
    form = widget.form
    form.device.value = "cpu"
    form.update_every.value = update_every
    for key, value in values.items():
        control = getattr(form, key, None) or getattr(widget, key)
        control.value = value
    if steps is not None:
        form.steps.value = steps


def run_and_wait(qtbot, widget):
    """Click Run, wait for the end; the layers the run added and how often data changed."""
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
    assert not widget.running and not widget.estimating
    assert widget.run_button.isEnabled() and not widget.stop_button.isEnabled()
    assert widget.form.first.enabled and widget.form.advanced_box.enabled


def watch_progress(widget) -> list[str]:
    """The progress texts the dock shows, one per update (the bar's value may not move)."""
    texts: list[str] = []
    show = widget.panel.show_snapshot

    def recording(snap, noun, stopping):
        show(snap, noun, stopping)
        texts.append(widget.progress.format())

    widget.panel.show_snapshot = recording
    return texts


def piece_threads() -> list[str]:
    """The names of the pipeline's piece threads still alive."""
    return [t.name for t in threading.enumerate() if t.name.startswith("napari-dip")]


def threads_a_new_thread_gets() -> int:
    """torch's thread count as a thread started now takes it up."""
    import torch

    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]
