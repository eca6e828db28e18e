"""napari-dip: Deep Image Prior restoration for napari, Python and the command line.

The public functions are imported lazily, so ``import napari_dip`` (and napari's start-up)
does not pay for importing torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# torch's OpenMP threads spin while waiting for each other. When they share the cores with
# napari's GUI thread or another process, a spinning thread waits for a descheduled one and a
# step gets 100× slower (measured here: 0.23 s → 23 s for 4 steps on 2 busy cores). Passive
# waiting avoids that; it only takes effect if set before torch is first imported, and a
# value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = [
    "Snapshot",
    "TimeEstimate",
    "denoise",
    "estimate_time",
    "inpaint",
    "restore_steps",
    "super_resolve",
]

if TYPE_CHECKING:
    from .estimate import TimeEstimate, estimate_time
    from .restore import Snapshot, denoise, inpaint, restore_steps, super_resolve


def __getattr__(name: str) -> Any:
    if name in ("TimeEstimate", "estimate_time"):
        from . import estimate

        return getattr(estimate, name)
    if name in __all__:
        from . import restore

        return getattr(restore, name)
    raise AttributeError(f"module 'napari_dip' has no attribute {name!r}")
