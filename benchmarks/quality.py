"""Quality: napari-dip against what a user would pick instead, side by side in one run.

Per task, on the tuning or the held-out images (benchmarks/datasets.py): PSNR, SSIM, seconds
and steps of napari-dip's variants (the default and the options named with ``--ours``) and of
the classical methods (benchmarks/baselines.py), plus our estimated PSNR where the run makes
one. Oracle baselines (told the true σ, or stopped on the clean image) are marked.

    python -m benchmarks quality --task denoise --split tuning --size 256 --sigmas 25
    python -m benchmarks quality --task photon --split held_out --photons 5 30 100
    python -m benchmarks quality --task deconvolve --size 128 --photons 30
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import baselines, datasets, measure

# napari-dip variants by name: the run options a user would pass
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "sure": {"stop": "sure"},
    "validation": {"stop": "validation"},
    "ensemble4": {"ensemble": 4},
    "sure-ensemble4": {"stop": "sure", "ensemble": 4},
    "sure-nlmeans": {"stop": "sure", "fuse": "nlmeans"},
    "sure-bm3d": {"stop": "sure", "fuse": "bm3d"},
    "sure-sigma": {"stop": "sure", "sigma": "given"},  # an oracle: told the true σ
    "paper": {"preset": "paper"},
    "cold": {"warm_start": False},  # stacks: every slice from scratch
    "whole": {"tile": None},  # no tiles: inpainting as before its light tiles
    "biharmonic": {"fuse": "biharmonic"},  # inpainting blended with the biharmonic fill
    "unfused": {"fuse": "none"},  # inpainting: the network's fill alone (before fuse="auto")
    # super-resolution as it was before its light tiles: whole, self-validation's plain settings
    "whole-validation": {"tile": None, "stop": "validation"},
}
TASKS = ("denoise", "photon", "inpaint", "super_resolve", "deconvolve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=TASKS, default="denoise")
    parser.add_argument("--split", choices=("tuning", "held_out"), default="tuning")
    parser.add_argument("--images", nargs="*", help="a subset of the split's images")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--colour", action="store_true", help="colour images (denoise)")
    parser.add_argument(
        "--unclipped",
        action="store_true",
        help="denoise: float clean + noise, not rounded and clipped to uint8 (the noise stays "
        "Gaussian, so SURE's estimated PSNR can be shown and checked everywhere)",
    )
    parser.add_argument("--sigmas", type=float, nargs="*", default=[25.0])
    parser.add_argument("--photons", type=float, nargs="*", default=[30.0])
    parser.add_argument("--factors", type=int, nargs="*", default=[4])
    parser.add_argument("--masks", nargs="*", default=["random"], choices=("random", "blocks"))
    parser.add_argument("--psf", choices=("gaussian", "widefield"), default="gaussian")
    parser.add_argument("--depth", type=int, default=8, help="slices of a photon stack")
    parser.add_argument("--stacks", type=int, help="only the split's first N photon stacks")
    parser.add_argument("--ours", nargs="*", default=["default"], choices=sorted(VARIANTS))
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--n2v", action="store_true", help="careamics N2V (its own venv)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tag", help="added to the result's name (a run beside the stored one)")


def _cases(args: argparse.Namespace) -> Iterator[tuple[str, str, np.ndarray, dict, np.ndarray]]:
    """``(image, degradation, observed, extra, clean)`` for the chosen task and split."""
    if args.task == "photon":
        seeds = datasets.TUNING_SEEDS if args.split == "tuning" else datasets.HELD_OUT_SEEDS
        for seed in seeds[: args.stacks]:
            for photons in args.photons:
                shape = (args.depth, args.size, args.size)
                observed, extra, clean = datasets.photon_stack(photons, seed, shape)
                yield f"cells seed {seed}", f"{photons:g} photons", observed, extra, clean
        return
    names = args.images or datasets.names(args.split, colour=args.colour)
    for k, name in enumerate(names):
        clean = datasets.image(name, args.size, colour=args.colour)
        if args.task == "denoise":
            for sigma in args.sigmas:
                observed, extra, _ = datasets.gaussian_noise(
                    clean, sigma, seed=k, clip=not args.unclipped
                )
                yield name, f"σ = {sigma:g}", observed, extra, clean
        elif args.task == "inpaint":
            for kind in args.masks:
                observed, extra, _ = datasets.inpainting(clean, kind, seed=k)
                yield name, f"{kind} mask", observed, extra, clean
        elif args.task == "super_resolve":
            for factor in args.factors:
                observed, extra, sharp = datasets.low_resolution(clean, factor)
                yield name, f"×{factor}", observed, extra, sharp
        else:
            psf = _psf(args.psf)
            grey = clean if clean.ndim == 2 else clean.mean(-1)
            for photons in args.photons:
                observed, extra, sharp = datasets.blur_poisson(grey, psf, photons, seed=k)
                yield name, f"{args.psf} PSF, {photons:g} photons", observed, extra, sharp


def _psf(kind: str) -> np.ndarray:
    from napari_dip.psf import gaussian_psf, widefield_psf

    if kind == "gaussian":
        return gaussian_psf(2.0)
    return widefield_psf(na=0.8, wavelength=0.52, refractive_index=1.0, pixel_size=0.1)


def _ours(task: str, observed: np.ndarray, extra: dict, options: dict, device: str) -> dict:
    """One napari-dip run as a user would make it; its result, seconds, steps, estimate."""
    from napari_dip import restore_steps

    kwargs: dict[str, Any] = {"device": device, **options}
    if kwargs.get("sigma") == "given":
        kwargs["sigma"] = extra["sigma"]
    if observed.ndim == 3 and task != "photon":
        kwargs["channel_axis"] = -1
    if task == "photon":
        kwargs |= {"axes": "ZYX"}  # noise="auto" picks Poisson–Gaussian on every stack here
    elif task == "inpaint":
        kwargs |= {"task": "inpaint", "mask": extra["mask"]}
    elif task == "super_resolve":
        kwargs |= {"task": "super_resolve", "factor": extra["factor"]}
    elif task == "deconvolve":
        kwargs |= {"task": "deconvolve", "psf": extra["psf"], "noise": "poisson-gaussian"}
    start = time.perf_counter()
    final = measure.last(restore_steps(observed, previews=False, **kwargs))
    return {
        "result": final.result(),
        "seconds": time.perf_counter() - start,
        "steps": final.step,
        "estimated": final.estimated_psnr,
        "range": final.estimated_psnr_range,
    }


def _n2v(task: str, observed: np.ndarray) -> dict | None:
    from .peers.n2v import n2v_denoise

    axes = "ZYX" if task == "photon" else ("YXC" if observed.ndim == 3 else "YX")
    out = n2v_denoise(observed, axes)
    if out is None:
        return None
    restored, seconds = out
    return {"result": restored, "seconds": seconds, "steps": None, "estimated": None}


def run(args: argparse.Namespace) -> dict:
    rows = []
    peak = None
    for name, degradation, observed, extra, clean in _cases(args):
        if args.task in ("photon", "deconvolve"):
            peak = float(clean.max() - extra["offset"])  # the signal's range in ADU
            target = clean
        else:
            target = clean
        runs: list[tuple[str, str, dict]] = []
        for variant in args.ours:
            runs.append(
                (
                    f"napari-dip {variant}",
                    "true σ" if VARIANTS[variant].get("sigma") == "given" else "",
                    _ours(args.task, observed, extra, VARIANTS[variant], args.device),
                )
            )
        if not args.no_baselines:
            kind = "photon" if args.task == "photon" else args.task
            for b in baselines.for_task(kind, clean.ndim if args.task == "deconvolve" else None):
                known = {k: extra[k] for k in b.uses if k in extra}
                if "clean" in b.uses:
                    known["clean"] = target
                restored, seconds = measure.timed(b.method, observed, **known)
                runs.append((b.name, b.oracle, {"result": restored, "seconds": seconds}))
        if args.n2v and args.task in ("denoise", "photon"):
            out = _n2v(args.task, observed)
            if out is not None:
                runs.append(("careamics N2V", "", out))
        data_range = peak if peak is not None else 255.0
        dtype = np.dtype(observed.dtype)
        # ours is against the dtype's range, or a float image's own (its min to max)
        if dtype.kind in "iu":
            full = float(np.iinfo(dtype).max - np.iinfo(dtype).min)
        else:
            full = float(np.max(observed) - np.min(observed))
        for method, oracle, out in runs:
            result = np.asarray(out["result"], np.float64)
            estimated, span = out.get("estimated"), out.get("range")
            shift = 20 * np.log10(data_range / full)
            if estimated is not None:
                estimated += shift
            low, high = (None, None) if span is None else (span[0] + shift, span[1] + shift)
            if peak is not None:  # photon units above the offset: the offset is not signal
                result, truth = result - extra["offset"], target - extra["offset"]
            else:
                truth = target
            row = {
                "image": name,
                "degradation": degradation,
                "method": method,
                "oracle": oracle,
                "psnr": measure.psnr(truth, result, data_range),
                "ssim": measure.ssim(truth, result, data_range),
                "seconds": out["seconds"],
                "steps": out.get("steps"),
                "estimated psnr": estimated,
                "estimated low": low,
                "estimated high": None if high is None or not np.isfinite(high) else high,
            }
            rows.append(row)
            print(measure.row_text(row), flush=True)
    shape = f"{args.depth}x{args.size}" if args.task == "photon" else str(args.size)
    default_shape = "8x256" if args.task == "photon" else "256"
    return measure.record(
        name=f"quality_{args.task}_{args.split}"
        + ("" if shape == default_shape else f"_{shape}")
        + ("_colour" if getattr(args, "colour", False) else "")
        + ("_unclipped" if getattr(args, "unclipped", False) else "")
        + (f"_{args.tag}" if args.tag else ""),
        title=f"Quality: {args.task} ({args.split} images, {args.size}²"
        + (", colour)" if getattr(args, "colour", False) else ")"),
        rows=rows,
        notes=[
            "Oracle methods are told what a user would not know (the 'oracle' column).",
            "Estimated low/high: the range the estimate's own sampling error allows (± 2 of its "
            "standard deviations); a low without a high: unbounded above.",
            f"Split '{args.split}': "
            + (
                "settings may have been chosen on these images."
                if args.split == "tuning"
                else "never used to choose anything."
            ),
        ],
        plots=[
            {
                "title": "PSNR by method",
                "x": "method",
                "y": ["psnr"],
                "group": "degradation",
                "kind": "bar",
            }
        ],
    )
