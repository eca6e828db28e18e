"""Make the README screenshot: the noisy sample denoised with the Denoise widget docked.

Run under Xvfb:  xvfb-run -a -s "-screen 0 1280x1024x24" python docs/make_screenshot.py out.png
"""

from __future__ import annotations

import sys

import napari
from PIL import Image
from qtpy.QtCore import QTimer


def main(path: str) -> None:
    viewer = napari.Viewer(title="napari-dip")
    viewer.window._qt_window.resize(1280, 900)  # the screenshot's size
    viewer.open_sample("napari-dip", "noisy")
    viewer.layers.remove("camera (clean)")  # keep the grid to input | result
    _, widget = viewer.window.add_plugin_dock_widget("napari-dip", "Denoise")
    widget.update_every.value = 100  # defaults otherwise: 'fast' preset, automatic stop
    widget.advanced.expand(animate=False)

    def shoot() -> None:
        viewer.grid.enabled = True  # input and result side by side
        viewer.reset_view()
        QTimer.singleShot(1500, lambda: take(path))

    def take(target: str) -> None:
        pixels = viewer.screenshot(canvas_only=False, flash=False)
        viewer.close()
        # a 256-colour palette keeps the PNG small; the picture is mostly grey anyway
        Image.fromarray(pixels[..., :3]).quantize(256).save(target, optimize=True)

    def on_done() -> None:
        QTimer.singleShot(500, shoot)

    def run() -> None:
        widget.run_button.click()
        widget._worker.finished.connect(on_done)

    widget.estimate_button.click()  # the estimate stays on show during the run
    widget._estimate_worker.finished.connect(lambda: QTimer.singleShot(0, run))
    napari.run()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
