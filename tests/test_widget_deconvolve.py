"""The Deconvolve dock: the PSF from a layer, a file or a model, checked on the main thread
(a bad PSF is a clear notification and nothing runs), and the optional mask and factor.

Most checks make the run's plan only (no fit); two tiny runs compare with the numpy API.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import napari_dip
from conftest import dock
from napari_dip import psf, samples
from napari_dip.widget.inputs import read_source
from test_widget_support import assert_idle, configure, run_and_wait

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN = {"device": "cpu", "stop": "none", "preset": "fast"}


def blurred(size: int = 32, sigma: float = 1.5) -> np.ndarray:
    clean = samples.grey_crop("camera", size=size).astype(np.float32)
    return ndimage.convolve(clean, psf.gaussian_psf(sigma), mode="reflect")


def shown(widget, container) -> list[str]:
    return [w.label for w in container if w.native.isVisibleTo(widget)]


def planned_psf(widget) -> np.ndarray:
    """The checked PSF the dock's run would use (its request, made on this thread)."""
    return widget._plan(read_source(widget._viewer, widget.form)).request.psf


def test_the_first_screen_shows_the_chosen_psf_source_and_the_sample_starts_on_its_psf(
    make_napari_viewer_proxy,
):
    viewer = make_napari_viewer_proxy()
    viewer.add_image(blurred(), name="cells")
    widget = dock(viewer, "Deconvolve")
    form = widget.form
    assert widget.psf.source.value == "gaussian"  # no PSF layer open: a model
    assert shown(widget, form.first) == ["image", "PSF", "σ (pixels)", "quality", "noise model"]
    for source, controls in {
        "layer": ["PSF layer"],
        "file": ["PSF file"],
        "widefield": ["NA", "emission λ (µm)", "refractive index", "pixel size (µm)"],
    }.items():
        widget.psf.source.value = source
        assert shown(widget, form.first) == ["image", "PSF", *controls, "quality", "noise model"]
    assert "centred" in widget.psf.source.tooltip
    form.advanced.expand(animate=False)
    assert shown(widget, form.advanced_box)[:2] == ["mask", "factor"]
    assert widget.mask.value is None and widget.factor.value == 1  # both optional
    assert "sure" not in form.stop.choices  # SURE is for denoising
    options = form.run_options()
    assert options["ensemble"] == 1 and options["uncertainty"] is False

    viewer = make_napari_viewer_proxy()  # a dock opens once per viewer
    viewer.open_sample("napari-dip", "blurred")  # the blurred camera, its PSF, the truth
    second = dock(viewer, "Deconvolve")
    assert second.form.image.value.name == "camera (blurred)"  # not the hidden clean one
    assert second.psf.source.value == "layer"
    assert second.psf.layer.value.name.startswith("PSF (Gaussian")
    np.testing.assert_allclose(planned_psf(second), psf.gaussian_psf(2.0), atol=1e-7)


def test_every_psf_source_reaches_the_request(make_napari_viewer_proxy, tmp_path):
    import tifffile

    viewer = make_napari_viewer_proxy()
    layer = viewer.add_image(blurred(), name="cells", scale=(0.1, 0.1))
    layer.units = ("um", "um")
    widget = dock(viewer, "Deconvolve")
    assert widget.psf.pixel_size.value == pytest.approx(0.1)  # from the layer's scale
    kernel = psf.gaussian_psf(1.2)
    np.testing.assert_allclose(planned_psf(widget), psf.gaussian_psf(1.5), atol=1e-7)

    widget.psf.sigma.value = 1.2
    np.testing.assert_allclose(planned_psf(widget), kernel, atol=1e-7)

    widget.psf.source.value = "layer"
    widget.psf.layer.value = viewer.add_image(kernel * 1000, name="beads", visible=False)
    np.testing.assert_allclose(planned_psf(widget), kernel, atol=1e-6)  # normalised

    tifffile.imwrite(tmp_path / "psf.tif", (kernel * 60000).astype(np.uint16))
    widget.psf.source.value = "file"
    widget.psf.file.value = tmp_path / "psf.tif"
    np.testing.assert_allclose(planned_psf(widget), kernel, atol=1e-4)

    widget.psf.source.value = "widefield"
    widget.psf.na.value, widget.psf.pixel_size.value = 0.8, 0.2
    airy = psf.widefield_psf(0.8, 0.52, 1.515, 0.2)
    np.testing.assert_allclose(planned_psf(widget), airy, atol=1e-7)


def test_bad_psfs_are_refused_at_once_with_a_clear_message(
    make_napari_viewer_proxy, errors, tmp_path
):
    viewer = make_napari_viewer_proxy()
    image = viewer.add_image(blurred(size=24), name="cells")
    widget = dock(viewer, "Deconvolve")
    configure(widget, steps=5)
    shifted = np.zeros((9, 9), np.float32)
    shifted[0, 0] = 1
    nan = psf.gaussian_psf(1.0)
    nan[4, 4] = np.nan
    dip = psf.gaussian_psf(1.0)
    dip[0, 0] = -0.5
    (tmp_path / "notes.tif").write_text("not an image")
    cases = [
        ("layer", None, "choose the PSF layer"),
        ("layer", image, "is the image"),
        ("layer", shifted, "off-centre"),
        ("layer", nan, "NaN"),
        ("layer", dip, "significantly negative"),
        ("layer", np.ones((3, 5, 5)), "must be 2D"),
        ("layer", np.ones((31, 31)), "larger than the image"),
        ("layer", np.zeros((5, 5)), "all zero"),
        ("layer", [np.ones((8, 8)), np.ones((4, 4))], "multiscale"),
        ("file", None, "choose the PSF file"),
        ("file", tmp_path / "missing.tif", "no such file"),
        ("file", tmp_path / "notes.tif", "cannot read"),
        ("widefield", None, "refractive_index must be larger than the NA"),
    ]
    for k, (source, value, message) in enumerate(cases):
        widget.psf.source.value = source
        if source == "layer" and isinstance(value, np.ndarray | list):
            value = viewer.add_image(value, name=f"psf {k}", multiscale=isinstance(value, list))
        if source == "layer":
            widget.psf.layer.value = value
        elif source == "file" and value is not None:
            widget.psf.file.value = value
        elif source == "widefield":
            widget.psf.refractive_index.value = 1.33  # water, under a 1.4 NA oil objective
        widget.run_button.click()
        assert message in errors()[-1], (message, errors()[-1])
        assert errors()[-1].startswith("Deep Image Prior: ")
        assert not widget.running
        widget.estimate_button.click()  # the estimate refuses what the run refuses
        assert message in errors()[-1] and not widget.estimating
    assert len(errors()) == 2 * len(cases)
    assert not [layer for layer in viewer.layers if "deconvolved" in layer.name]
    assert_idle(widget)


def test_a_gaussian_run_matches_the_api_and_mask_and_factor_reach_it(
    make_napari_viewer_proxy, qtbot
):
    viewer = make_napari_viewer_proxy()
    image = blurred()
    layer = viewer.add_image(image, name="cells", scale=(2.0, 2.0))
    widget = dock(viewer, "Deconvolve")
    configure(widget, stop="none", steps=8, update_every=4)
    (out,), _ = run_and_wait(qtbot, widget)
    assert out.name == "cells [deconvolved]" and out.data.dtype == np.float32
    kernel = psf.gaussian_psf(1.5)
    np.testing.assert_array_equal(out.data, napari_dip.deconvolve(image, kernel, steps=8, **RUN))
    meta = out.metadata
    assert meta["task"] == "deconvolve" and meta["step"] == 8
    assert meta["psf"] == {"source": "gaussian", "sigma_px": 1.5, "shape": [13, 13]}

    holes = np.zeros(image.shape, np.int32)
    holes[10:14, 10:20] = 1
    widget.mask.value = viewer.add_labels(holes, name="holes")
    widget.factor.value = 2
    configure(widget, steps=3, update_every=3)
    (out,), _ = run_and_wait(qtbot, widget)
    assert out.data.shape == (64, 64) and out.metadata["factor"] == 2
    assert out.metadata["mask"] == "holes"
    np.testing.assert_allclose(out.scale, (1.0, 1.0))  # exactly over the input
    expected = napari_dip.deconvolve(image, kernel, mask=holes, factor=2, steps=3, **RUN)
    np.testing.assert_array_equal(out.data, expected)
    np.testing.assert_array_equal(layer.data, image)
    assert_idle(widget)
