"""The npe2 manifest is valid, installed, and its sample data load offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from npe2 import PluginManifest

from napari_dip.widget import samples as layer_samples


def test_manifest_is_installed_and_valid() -> None:
    manifest = PluginManifest.from_distribution("napari-dip")
    assert manifest.name == "napari-dip"
    assert manifest.display_name == "Deep Image Prior"
    widgets = {w.display_name for w in manifest.contributions.widgets or []}
    assert widgets == {"Denoise", "Inpaint", "Super-resolve", "Deconvolve"}
    for command in manifest.contributions.commands or []:
        assert command.python_name.startswith("napari_dip.widget")  # the napari face's package
    manifest.validate_imports()
    # File ▸ Open Sample offers every loader of the samples module, each under its own key
    loaders = {c.id: c.python_name for c in manifest.contributions.commands or []}
    offered = {s.key: loaders[s.command] for s in manifest.contributions.sample_data or []}
    keys = ("noisy", "damaged", "low_resolution", "blurred", "photon_limited", "blurred_cells")
    assert offered == {key: f"napari_dip.widget.samples:{key}_sample" for key in keys}
    assert sorted(name.split(":")[1] for name in offered.values()) == layer_samples.__all__


@pytest.mark.parametrize(
    ("loader", "kinds"),
    [
        (layer_samples.noisy_sample, ["image", "image"]),
        (layer_samples.damaged_sample, ["image", "labels", "image"]),
        (layer_samples.low_resolution_sample, ["image", "image"]),
        (layer_samples.photon_limited_sample, ["image", "image"]),
        (layer_samples.blurred_sample, ["image", "image", "image"]),
        (layer_samples.blurred_cells_sample, ["image", "image", "image"]),
    ],
)
def test_samples_are_seeded_layer_data(loader, kinds) -> None:
    first, second = loader(), loader()
    assert [kind for _, _, kind in first] == kinds
    for (a, meta, _), (b, _, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
        assert meta["name"]
    # the first layer is the degraded input, not the (hidden) clean image it is compared with
    ((clean, meta),) = [(a, m) for a, m, _ in first if "clean" in m["name"]]
    assert meta["visible"] is False
    degraded = first[0][0].astype(np.float64)
    if degraded.shape == clean.shape:  # measured: 0.14 (blurred) to 0.91 (photon-limited)
        assert np.abs(degraded - clean).mean() > 0.05 * clean.std()
    else:  # the low-resolution sample: 4× smaller
        assert tuple(4 * n for n in degraded.shape) == clean.shape


def test_the_root_manifest_is_the_package_one() -> None:
    root = Path(__file__).parents[1] / "napari.yaml"
    assert root.is_symlink()
    assert root.resolve() == (Path(__file__).parents[1] / "src/napari_dip/napari.yaml").resolve()


def test_samples_load_in_viewer(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample("napari-dip", "damaged")
    names = [layer.name for layer in viewer.layers]
    assert names == ["camera (damaged)", "missing pixels", "camera (clean)"]
    assert viewer.layers["missing pixels"].data.any()
    viewer.open_sample("napari-dip", "low_resolution")
    low, clean = viewer.layers["camera (low resolution)"], viewer.layers["camera (clean) [1]"]
    assert low.data.shape == (64, 64) and clean.data.shape == (256, 256)

    # pixel edges (centres ± half a pixel) coincide: the low-resolution image overlays the clean
    def edges(layer):
        half = np.asarray(layer.scale) / 2
        return layer.extent.world + np.stack([-half, half])

    np.testing.assert_allclose(edges(low), edges(clean))
    np.testing.assert_allclose(edges(low), [[-0.5, -0.5], [255.5, 255.5]])
