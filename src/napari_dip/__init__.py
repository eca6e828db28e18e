"""napari-dip: Deep Image Prior restoration for napari, Python and the command line.

The public functions are imported lazily, so ``import napari_dip`` (and napari's start-up)
does not pay for importing torch, and importing it changes nothing in the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
__all__ = [
    "RestorationError",
    "Snapshot",
    "TimeEstimate",
    "deconvolve",
    "denoise",
    "estimate_time",
    "inpaint",
    "restore_steps",
    "super_resolve",
]

if TYPE_CHECKING:
    from .estimate import TimeEstimate, estimate_time
    from .restore import (
        RestorationError,
        Snapshot,
        deconvolve,
        denoise,
        inpaint,
        restore_steps,
        super_resolve,
    )


def __getattr__(name: str) -> Any:
    if name in ("TimeEstimate", "estimate_time"):
        from . import estimate

        return getattr(estimate, name)
    if name in __all__:
        from . import restore

        return getattr(restore, name)
    raise AttributeError(f"module 'napari_dip' has no attribute {name!r}")
