"""torch's intra-op thread count for the thread that runs a fit, without touching the others.

torch keeps a count per thread, read once (from a process-wide default that
``torch.set_num_threads`` also sets) when the thread first needs it. :func:`use_threads` sets
only the calling thread's: through the OpenMP runtime torch runs on (its per-thread
``omp_set_num_threads``), so two runs (two docks) fitting at once, and napari's own threads,
never see a count they did not choose. Where that runtime cannot be reached, it falls back to
``torch.set_num_threads`` with the default put straight back, under a lock.
"""

from __future__ import annotations

import ctypes
import functools
import threading

import torch

__all__ = ["default_threads", "use_threads"]

_LOCK = threading.Lock()


def _on_fresh_thread(fn, *args):  # type: ignore[no-untyped-def]
    """Run ``fn(*args)`` on a new thread (which reads torch's default count) and return it."""
    out: list = []
    helper = threading.Thread(target=lambda: out.append(fn(*args)), name="napari-dip threads")
    helper.start()
    helper.join()
    return out[0] if out else None


def default_threads() -> int:
    """The torch thread count a thread started now would get."""
    return int(_on_fresh_thread(torch.get_num_threads))


@functools.cache
def _omp_set_num_threads():  # type: ignore[no-untyped-def]
    """The loaded OpenMP runtime's ``omp_set_num_threads`` (per thread), or None."""
    try:
        return ctypes.CDLL(None).omp_set_num_threads
    except (OSError, AttributeError, TypeError):
        return None


def use_threads(count: int) -> None:
    """Give the calling thread ``count`` torch threads; the process default is unchanged."""
    count = int(count)
    torch.get_num_threads()  # this thread takes up its default now, so it is not read later
    setter = _omp_set_num_threads()
    if setter is not None:
        setter(count)
        if torch.get_num_threads() == count:  # torch runs on that runtime: done
            return
    with _LOCK:
        default = default_threads()
        torch.set_num_threads(count)  # this thread's count, and (briefly) the default
        torch.get_num_threads()
        if default != count:
            _on_fresh_thread(torch.set_num_threads, default)
