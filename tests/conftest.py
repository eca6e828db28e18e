"""Shared fixtures: small, seeded images so the suite stays fast on 2 CPU cores."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data, metrics


def psnr(truth: np.ndarray, estimate: np.ndarray, data_range: float = 255) -> float:
    return float(
        metrics.peak_signal_noise_ratio(
            truth.astype(np.float64), estimate.astype(np.float64), data_range=data_range
        )
    )


@pytest.fixture
def camera128() -> np.ndarray:
    """A 128×128 uint8 crop with edges and texture (the cameraman's head and camera)."""
    return data.camera()[100:228, 200:328].copy()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine more threads make torch far slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def errors():
    """Messages of the error notifications shown during the test (napari imported lazily)."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    seen: list = []
    notification_manager.notification_ready.connect(seen.append)
    yield lambda: [str(n.message) for n in seen if n.severity == NotificationSeverity.ERROR]
    notification_manager.notification_ready.disconnect(seen.append)


def dock(viewer, name: str):
    """Open one of the plugin's dock widgets in ``viewer`` and return it."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-dip", name)
    return widget
