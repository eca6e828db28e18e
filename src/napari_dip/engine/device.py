"""Pick the torch device: ``auto`` prefers CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import warnings

import torch

__all__ = [
    "PRECISIONS",
    "autocast_dtype",
    "available_devices",
    "resolve_device",
]

PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Names of the devices this machine can run on, best first (CPU is always there).

    Examples
    --------
    >>> names = available_devices()  # e.g. ['cuda:0', 'cpu']
    >>> "cpu" in names
    True
    """
    names = (
        [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    if _mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` into a usable device.

    Raises ``ValueError`` naming the problem when the device is unknown or absent, so a user who
    asked for a GPU never silently gets the CPU.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: unknown device 'tpu'; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                "device 'cuda' was requested but this torch build sees no CUDA GPU "
                f"(torch {torch.__version__}); use device='auto' or 'cpu'"
            )
        index = dev.index or 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(dev)!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist"
            )
    elif dev.type == "mps":
        if not _mps_available():
            raise ValueError(
                "device 'mps' was requested but Apple MPS is not available here; "
                "use device='auto' or 'cpu'"
            )
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {str(dev)!r}; use 'auto', 'cpu', 'cuda' or 'mps'")
    return dev


def _cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively here (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(
    device: torch.device, precision: str = "auto", volumetric: bool = False
) -> torch.dtype | None:
    """The autocast dtype for the network's forward pass, or ``None`` for plain float32.

    ``"auto"`` takes bfloat16 where the hardware computes it natively (CUDA GPUs with bf16,
    CPUs with AVX512-BF16/AMX), float16 on older CUDA GPUs and float32 elsewhere (MPS included).
    Parameters, the loss and the averages stay float32 either way. Asking for a precision the
    device cannot run raises ``ValueError``. A ``volumetric`` (Conv3d) network on a CPU runs in
    float32, with a warning where bfloat16 was asked for by name: oneDNN's bfloat16 Conv3d weight
    gradient (torch 2.13, AMX CPUs) is NaN for some shapes and thread counts (> 32 channels).

    Examples
    --------
    >>> import torch
    >>> print(autocast_dtype(torch.device("cpu"), "float32"))  # no autocast
    None
    >>> autocast_dtype(torch.device("cpu"), "bfloat16")
    torch.bfloat16
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return None
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return torch.bfloat16 if bf16 else torch.float16
        if precision == "bfloat16" and not bf16:
            raise ValueError("this CUDA GPU has no bfloat16; use precision='float16' or 'auto'")
        return getattr(torch, precision)
    if device.type == "cpu":
        if precision == "float16":
            raise ValueError("float16 is for GPUs; on a CPU use precision='bfloat16' or 'float32'")
        if precision == "auto" and not _cpu_has_bf16():
            return None
        if volumetric:
            if precision == "bfloat16":
                warnings.warn(
                    "bfloat16 Conv3d gradients are unreliable on CPUs: the volume runs in float32",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return None
        return torch.bfloat16  # emulated (slow) where the CPU lacks bf16, but correct
    if precision == "auto":
        return None
    return getattr(torch, precision)
