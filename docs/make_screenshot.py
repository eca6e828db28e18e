"""Make the README screenshot: the noisy sample denoised with the Denoise dock's defaults.

Run under Xvfb:  xvfb-run -a -s "-screen 0 1280x1024x24" python docs/make_screenshot.py out.png
(``--first`` makes docs/images/first-screen.png instead: the dock as a newcomer first sees it,
before Estimate or Run; ``--advanced`` also unfolds the Advanced section, to look at every
control;
``--uncertainty`` makes docs/images/uncertainty.png instead: the same run at the *fast*
quality on a 128² crop with an uncertainty map from an ensemble of 2: input, result and σ
one above the other.)
"""

from __future__ import annotations

import sys

import napari
from PIL import Image
from qtpy.QtCore import QTimer


def save_small(picture: Image.Image, target: str) -> None:
    """A 256-colour PNG (small; the picture is mostly grey), with the plot's few colours kept
    exactly: a palette made for the whole picture would merge its thin lines into the greys."""
    from napari_dip.widget.plot import CurvePlot

    kept = [CurvePlot.LOSS, CurvePlot.SCORE, CurvePlot.BEST, CurvePlot.STOP]
    rest = picture.quantize(256 - len(kept)).getpalette()[: 3 * (256 - len(kept))]
    palette = Image.new("P", (1, 1))
    palette.putpalette(rest + [v for c in kept for v in (c.red(), c.green(), c.blue())])
    picture.quantize(palette=palette, dither=Image.Dither.NONE).save(target, optimize=True)


def main(path: str, advanced: bool = False, uncertainty: bool = False, first: bool = False) -> None:
    viewer = napari.Viewer(title="napari-dip")
    viewer.window._qt_window.resize(1280, 900)  # the screenshot's size
    if uncertainty:  # a 128² crop: no tiles, and a few minutes for the two members
        from napari_dip import samples

        viewer.add_image(samples.noisy(sigma=25, size=128, seed=0)[0], name="camera (noisy)")
    else:
        viewer.open_sample("napari-dip", "noisy")
        viewer.layers.remove("camera (clean)")  # keep the grid to input | result
    _, widget = viewer.window.add_plugin_dock_widget("napari-dip", "Denoise")
    widget.form.update_every.value = 100  # otherwise the defaults: quality 'balanced'
    if uncertainty:
        widget.form.quality.value = "fast"
        widget.form.uncertainty.value = True
        widget.form.ensemble.value = 2
    if advanced or uncertainty:
        widget.form.advanced.expand(animate=False)

    def when(done, then) -> None:
        """Call ``then`` once ``done()`` is true (polled: the dock's workers are its own)."""
        timer = QTimer(widget)

        def check() -> None:
            if done():
                timer.stop()
                then()

        timer.timeout.connect(check)
        timer.start(100)

    def shoot() -> None:
        viewer.grid.enabled = True  # input and result (and σ) side by side
        if uncertainty:
            viewer.grid.shape = (3, 1)  # the canvas is tall: one above the other
        viewer.reset_view()
        QTimer.singleShot(1500, lambda: take(path))

    def take(target: str) -> None:
        pixels = viewer.screenshot(canvas_only=False, flash=False)
        viewer.close()
        save_small(Image.fromarray(pixels[..., :3]), target)

    def run() -> None:
        widget.run_button.click()
        when(lambda: not widget.running, lambda: QTimer.singleShot(500, shoot))

    if first:  # the dock as it opens: nothing estimated or run yet
        viewer.layers.selection.active = viewer.layers[0]  # its controls on show
        QTimer.singleShot(500, shoot)
    else:
        widget.estimate_button.click()  # the estimate stays on show during the run
        when(lambda: not widget.estimating, run)
    napari.run()


if __name__ == "__main__":
    flags = {"--advanced", "--uncertainty", "--first"}
    args = [a for a in sys.argv[1:] if a not in flags]
    sigma, first = "--uncertainty" in sys.argv, "--first" in sys.argv
    default = (
        "docs/images/uncertainty.png"
        if sigma
        else "docs/images/first-screen.png"
        if first
        else "docs/screenshot.png"
    )
    main(args[0] if args else default, "--advanced" in sys.argv, sigma, first)
