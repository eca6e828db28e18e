"""Train careamics' Noise2Void on one image and predict it: runs INSIDE the careamics venv.

    /work/venvs/careamics/bin/python n2v_runner.py in.npy out.npy --axes YX --epochs 20

Settings follow careamics-napari's training defaults (its ``TrainingSignal``): patch 64 (16 in
Z for 3D), batch 16, x/y flips and 90° rotations, a depth-2 U-Net with 32 first-layer filters,
N2V (not N2V2), channels independent; careamics' own defaults for the rest (8 validation
patches taken from the image, mean/std normalisation, Adam with ReduceLROnPlateau). A stack
is trained with its planes as samples ("SYX") or as a volume ("ZYX"). Writes the prediction
(float32, the input's shape) and a JSON of seconds next to it. Imports only this venv's own
packages (careamics, its torch, numpy): nothing from napari-dip.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help=".npy image to denoise (it is also the training data)")
    parser.add_argument("output", help=".npy path for the prediction; .json beside it")
    parser.add_argument("--axes", default="YX", help="YX, SYX (planes as samples), ZYX, YXC")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patch", type=int, default=64, help="patch side in Y and X")
    parser.add_argument("--patch-z", type=int, default=16, help="patch depth for ZYX")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--n-val-patches", type=int, default=8, help="patches of the image kept for validation"
    )
    parser.add_argument("--seed", type=int, default=1, help="> 0 (careamics)")
    parser.add_argument("--num-workers", type=int, default=None, help="careamics' default")
    args = parser.parse_args()

    start = time.perf_counter()
    import careamics
    import torch
    from careamics import CAREamist
    from careamics.config import create_advanced_n2v_config

    imported = time.perf_counter()
    image = np.load(args.input).astype(np.float32)
    axes = args.axes.upper()
    if len(axes) != image.ndim:
        raise SystemExit(f"axes {axes!r} do not match the image's shape {image.shape}")
    patch = [args.patch_z, args.patch, args.patch] if "Z" in axes else [args.patch] * 2
    options = {} if args.num_workers is None else {"num_workers": args.num_workers}
    config = create_advanced_n2v_config(
        experiment_name="n2v_self",
        data_type="array",
        axes=axes,
        patch_size=patch,
        batch_size=args.batch_size,
        num_epochs=args.epochs,
        n_channels=image.shape[axes.index("C")] if "C" in axes else None,
        augmentations=["x_flip", "y_flip", "rotate_90"],
        n_val_patches=args.n_val_patches,
        model_params={"depth": 2, "num_channels_init": 32},
        seed=args.seed,
        **options,
    )
    with tempfile.TemporaryDirectory(prefix="n2v_") as work:
        model = CAREamist(config, work_dir=work, enable_progress_bar=False)
        trained = time.perf_counter()
        model.train(train_data=image)
        predicted = time.perf_counter()
        outputs, _sources = model.predict(image)
        done = time.perf_counter()
    prediction = np.asarray(outputs[0], dtype=np.float32)
    if prediction.size != image.size:
        raise SystemExit(f"prediction {prediction.shape} does not match input {image.shape}")
    np.save(args.output, prediction.reshape(image.shape))
    record = {
        "train_seconds": predicted - trained,
        "predict_seconds": done - predicted,
        "seconds": done - trained,  # train + predict, no imports or start-up
        "import_seconds": imported - start,
        "epochs": args.epochs,
        "patch": patch,
        "n_val_patches": args.n_val_patches,
        "axes": axes,
        "shape": list(image.shape),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "careamics": careamics.__version__,
        "torch": torch.__version__,
    }
    Path(args.output).with_suffix(".json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
