"""The napari face: dock widgets to denoise, inpaint, super-resolve and deconvolve, and
sample data.

Importing this package sets ``OMP_WAIT_POLICY=PASSIVE`` when it is unset and torch is not
imported yet (and logs that it did): OpenMP threads that spin while waiting, sharing the cores
with napari's GUI thread, made steps up to 100× slower. A value you set wins; the library
itself (``import napari_dip``) leaves the environment alone. The dock classes are imported on
first use (napari, Qt), torch when a dock is created or run.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    logging.getLogger(__name__).info(
        "napari-dip set OMP_WAIT_POLICY=PASSIVE: spinning OpenMP threads slow the GUI down"
    )

__all__ = [
    "DeconvolveWidget",
    "DenoiseWidget",
    "InpaintWidget",
    "RestoreWidget",
    "SuperResolveWidget",
]

if TYPE_CHECKING:
    from .docks import (
        DeconvolveWidget,
        DenoiseWidget,
        InpaintWidget,
        RestoreWidget,
        SuperResolveWidget,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import docks

        return getattr(docks, name)
    raise AttributeError(f"module 'napari_dip.widget' has no attribute {name!r}")
