"""careamics' Noise2Void, trained on the image itself, as a peer to compare against.

careamics brings its own torch (a CUDA build, ~5 GB), so it lives in a separate venv
(``python3 -m venv /work/venvs/careamics && /work/venvs/careamics/bin/pip install careamics``)
and runs there through :mod:`n2v_runner` in a subprocess; arrays travel as .npy files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PYTHON = "/work/venvs/careamics/bin/python"
RUNNER = Path(__file__).with_name("n2v_runner.py")


def n2v_denoise(
    image: np.ndarray,
    axes: str,
    epochs: int = 20,
    python: str = PYTHON,
    timeout: float | None = None,
    **options: int,
) -> tuple[np.ndarray, float] | None:
    """Denoise ``image`` by N2V trained on it alone (careamics-napari's default settings).

    Parameters
    ----------
    image : ndarray
        2D, a stack or colour, as ``axes`` says: "YX", "SYX" (planes as training samples),
        "ZYX" (a volume) or "YXC".
    axes : str
        careamics' axes string for ``image``.
    epochs : int
        Training epochs (careamics-napari's default is 30; 20 here by default).
    python : str
        The careamics venv's interpreter.
    timeout : float, optional
        Seconds before the run is abandoned.
    **options : int
        ``patch``, ``patch_z``, ``batch_size``, ``n_val_patches``, ``seed``, ``num_workers``
        of the runner. careamics cuts the image into a grid of patch-sized cells, keeps
        ``n_val_patches`` (8) of them for validation and samples one patch from each other cell
        per epoch: a 256² image with patch 64 trains on 8 patches an epoch; a 64² one needs a
        smaller patch or fewer validation patches.

    Returns
    -------
    (restored, seconds) or None
        The float32 prediction (``image``'s shape, its units) and the seconds of training
        plus prediction (not the venv's start-up and imports); None, with a message on
        stderr, if the venv is missing.
    """
    if not Path(python).exists():
        print(
            f"N2V skipped: no careamics venv at {python} (create it with "
            "`python3 -m venv /work/venvs/careamics && /work/venvs/careamics/bin/pip install "
            "careamics`)",
            file=sys.stderr,
        )
        return None
    with tempfile.TemporaryDirectory(prefix="n2v_io_") as tmp:
        src, dst = Path(tmp, "input.npy"), Path(tmp, "output.npy")
        np.save(src, np.asarray(image))
        cmd = [python, str(RUNNER), str(src), str(dst), "--axes", axes, "--epochs", str(epochs)]
        for key, value in options.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode:
            raise RuntimeError(f"N2V runner failed ({done.returncode}):\n{done.stderr[-4000:]}")
        record = json.loads(dst.with_suffix(".json").read_text())
        return np.load(dst), float(record["seconds"])
