"""Benchmark: how well :func:`napari_dip.engine.noise_level` reads the noise from the image alone.

    python benchmarks/noise_level.py                 # 128², six images, σ = 15, 25, 50; photons

The discrepancy stop rule compares the squared error to the input with the mean noise variance,
so the estimate must be right for white Gaussian noise on textured images *and* for photon
noise, whose variance grows with the intensity and whose values are whole counts.

- **Gaussian rows**: the benchmark observation of ``early_stopping.py`` (σ on 0–255, rounded
  and clipped to uint8, seed 0) of each image, normalised as the engine sees it; the truth is
  the standard deviation of (noisy − clean), in the same units.
- **Photon rows**: 64² slices of :func:`napari_dip.samples.photon_limited` (gain 1, offset
  100); the truth is the root of the mean expected count (Poisson: variance = mean).

Columns: the estimate, the truth and their ratio, and the ratio of the rule's first estimate
(one median absolute deviation of the finest diagonal Haar details over the whole image, Donoho
1995), which read photon noise up to 29 % low: one median describes neither a variance that
varies with the intensity nor whole counts, where many details are exactly 0. A summary gives
the range of the ratios.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def haar_mad(y):
    """The first version's estimate: Donoho's MAD of the finest diagonal Haar details."""
    h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    u = y[..., :h, :w]
    d = (u[..., 0::2, 0::2] - u[..., 0::2, 1::2] - u[..., 1::2, 0::2] + u[..., 1::2, 1::2]) / 2
    return float(d.abs().flatten().median()) / 0.6745


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument(
        "--images", default="camera,astronaut,coins,chelsea,immunohistochemistry,moon"
    )
    parser.add_argument("--photons", default="5,20,100")
    args = parser.parse_args()

    import torch

    from early_stopping import degrade
    from napari_dip._arrays import prepare_image
    from napari_dip.engine import noise_level
    from napari_dip.samples import grey_crop, photon_limited

    print("| noise | image | level | σ̂ | true σ | σ̂ / σ | first version's σ̂ / σ |")
    print("|---|---|---:|---:|---:|---:|---:|")
    ratios: dict[str, list[float]] = {"gaussian": [], "photon": []}
    firsts: dict[str, list[float]] = {"gaussian": [], "photon": []}

    def row(kind: str, image: str, level: str, y, truth: float) -> None:
        estimate, first = float(noise_level(y)), haar_mad(y)
        ratios[kind].append(estimate / truth)
        firsts[kind].append(first / truth)
        print(
            f"| {kind} | {image} | {level} | {estimate:.4g} | {truth:.4g} "
            f"| {estimate / truth:.3f} | {first / truth:.3f} |"
        )

    for image in args.images.split(","):
        clean = grey_crop(image, args.size)
        for sigma in (15, 25, 50):
            noisy = degrade(f"denoise{sigma}", clean)[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # saturation warnings: known for these images
                unit, _ = prepare_image(noisy, None, None)
            span = float(noisy.max()) - float(noisy.min())
            truth = float(np.std(noisy.astype(np.float64) - clean)) / span
            row(
                "gaussian",
                image,
                f"σ {sigma}",
                torch.from_numpy(np.asarray(unit, np.float32)),
                truth,
            )
    for photons in (float(p) for p in args.photons.split(",")):
        noisy, clean = photon_limited((8, 64, 64), photons=photons, gain=1.0, offset=100.0, seed=0)
        for index in (2, 5):
            truth = float(np.sqrt(np.mean(clean[index] - 100.0)))
            y = torch.from_numpy(noisy[index].astype(np.float32))
            row("photon", f"slice {index}", f"{photons:g} photons", y, truth)
    print()
    for kind, values in ratios.items():
        print(
            f"- {kind}: σ̂ / σ from {min(values):.3f} to {max(values):.3f} ({len(values)} "
            f"images); first version {min(firsts[kind]):.3f} to {max(firsts[kind]):.3f}"
        )


if __name__ == "__main__":
    main()
