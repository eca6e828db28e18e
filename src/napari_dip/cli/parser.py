"""The ``napari-dip`` argument parser, built from the option table (:mod:`napari_dip.options`).

Building it imports no torch, so ``napari-dip --help`` answers at once. The docs' CLI
reference is generated from this parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import __version__
from ..io import WRITABLE_SUFFIXES
from ..options import FUSIONS, MODES, NOISES, OPTIONS, PRECISIONS, STOPS, choice_names

__all__ = ["PROG", "TASK_COMMANDS", "build_parser", "run_options"]

PROG = "napari-dip"
DEFAULT_UPDATE_EVERY = 100
# command -> API task
TASK_COMMANDS = {
    "denoise": "denoise",
    "inpaint": "inpaint",
    "super-resolve": "super_resolve",
    "deconvolve": "deconvolve",
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _tile_size(text: str) -> int | str | None:
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a tile size in pixels, 'auto' or 'none', got {text!r}"
        ) from None


def _workers(text: str) -> int | str:
    return "auto" if text.lower() == "auto" else _positive_int(text)


def _percentiles(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two percentiles like 0.1,99.9, got {text!r}"
        ) from None
    return low, high


def _choices(choices: tuple) -> str:
    return "; ".join(f"{c.name}: {c.help}" for c in choices)


# name -> (argparse keywords, text added to the option's help)
_CLI: dict[str, tuple[dict[str, Any], str]] = {
    "preset": ({"default": "fast"}, ""),
    "steps": ({"type": _positive_int, "metavar": "N"}, ""),
    "stop": ({"choices": choice_names(STOPS), "default": "auto"}, f" ({_choices(STOPS)})"),
    "seed": ({"type": int, "default": 0}, " (default 0)"),
    "device": ({"default": "auto"}, " (default auto)"),
    "precision": (
        {"choices": choice_names(PRECISIONS), "default": "auto"},
        f" ({_choices(PRECISIONS)})",
    ),
    "update_every": (
        {"type": _positive_int, "default": DEFAULT_UPDATE_EVERY, "metavar": "N"},
        f" (default {DEFAULT_UPDATE_EVERY})",
    ),
    "lr": ({"type": float}, ""),
    "perturb_std": ({"type": float, "metavar": "STD"}, " (default: from the preset)"),
    "tv_weight": ({"type": float, "default": 0.0, "metavar": "W"}, ""),
    "noise": ({"choices": choice_names(NOISES), "default": "auto"}, ""),
    "sigma": ({"type": float, "metavar": "STD"}, ""),
    "gain": ({"type": float}, ""),
    "offset": ({"type": float}, ""),
    "read_noise": ({"type": float, "metavar": "STD"}, ""),
    "normalize": ({"type": _percentiles, "metavar": "LOW,HIGH"}, ""),
    "tile": ({"type": _tile_size, "default": "auto", "metavar": "N|auto|none"}, ""),
    "tile_overlap": ({"type": int, "metavar": "N"}, ""),
    "workers": ({"type": _workers, "default": "auto", "metavar": "N|auto"}, ""),
    "ensemble": ({"type": _positive_int, "default": 1, "metavar": "N"}, " (default 1)"),
    "fuse": ({"choices": choice_names(FUSIONS), "default": "auto"}, f" ({_choices(FUSIONS)})"),
    "warm_start": ({"action": argparse.BooleanOptionalAction, "default": True}, ""),
    "uncertainty": (
        {"action": "store_true"},
        "; written beside the output as NAME_std.tif (float32, the input's units)",
    ),
}
_GROUPS = {
    "run options": (
        "preset",
        "steps",
        "stop",
        "fuse",
        "seed",
        "device",
        "precision",
        "update_every",
    ),
    "tuning": ("lr", "perturb_std", "tv_weight", "tile", "tile_overlap", "workers"),
    "stacks": ("warm_start",),
    "ensembles and uncertainty": ("ensemble", "uncertainty"),
    "noise model and intensities": ("noise", "sigma", "gain", "offset", "read_noise", "normalize"),
}


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line, as the API takes them."""
    return {name: getattr(args, name) for name in _CLI}


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    for title, names in _GROUPS.items():
        group = parser.add_argument_group(title)
        for name in names:
            kwargs, extra = _CLI[name]
            group.add_argument(
                OPTIONS[name].flag, dest=name, help=OPTIONS[name].help + extra, **kwargs
            )
    group = parser.add_argument_group("output")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--channel-axis",
        type=int,
        metavar="AXIS",
        help="axis of the colour channels (default: -1 for (H, W, 3|4) images, none for 2D; "
        "required for other 3D images without --axes)",
    )
    parser.add_argument(
        "--axes",
        metavar="AXES",
        help="what each axis is, one letter each from T (time), Z (depth), C (channels), Y, X, "
        "e.g. ZYX or TZCYX (default: from the TIFF's ImageJ/OME or OME-Zarr metadata)",
    )
    parser.add_argument(
        "--mode",
        choices=choice_names(MODES),
        default="slices",
        help=f"for stacks: {_choices(MODES)} (default slices)",
    )


def _add_task_inputs(parser: argparse.ArgumentParser, command: str, batch: bool) -> None:
    if command == "inpaint":
        if batch:
            masks = parser.add_mutually_exclusive_group(required=True)
            masks.add_argument("--mask", type=Path, help="one mask file for every input")
            masks.add_argument(
                "--mask-suffix",
                metavar="SUFFIX",
                help="each input's mask lies beside it, named like it with SUFFIX before the "
                "extension (e.g. _mask: cells.tif -> cells_mask.tif)",
            )
        else:
            parser.add_argument(
                "--mask",
                type=Path,
                required=True,
                help="mask image, nonzero = missing; (H, W) or the image's shape (an RGB mask "
                "counts a pixel as missing if any channel is nonzero)",
            )
    if command in ("super-resolve", "deconvolve"):
        parser.add_argument(
            "--factor",
            type=int,
            required=command == "super-resolve",
            help="upscaling factor, an integer >= 2",
        )
    if command == "deconvolve":
        psf = parser.add_mutually_exclusive_group(required=True)
        psf.add_argument("--psf", type=Path, help="the point-spread function, an image file")
        psf.add_argument(
            "--psf-sigma",
            type=float,
            metavar="SIGMA",
            help="a Gaussian PSF of this standard deviation in pixels",
        )
        psf.add_argument(
            "--psf-widefield",
            metavar="NA,WAVELENGTH,INDEX,PIXEL",
            help="a widefield (Born–Wolf) PSF from the numerical aperture, emission "
            "wavelength, immersion refractive index and pixel size (wavelength and pixel "
            "size in the same unit, e.g. 0.52,0.065 µm)",
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; building it needs no torch.

    Examples
    --------
    >>> parser = build_parser()
    >>> args = parser.parse_args(["denoise", "cells.tif", "-o", "out.tif", "--steps", "50"])
    >>> args.command, args.input.name, args.steps, args.stop, args.preset
    ('denoise', 'cells.tif', 50, 'auto', 'fast')
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Restore images with Deep Image Prior: no training data, no pretrained "
        "weights. Reads TIFF/OME-TIFF, PNG, JPEG and OME-Zarr; the output has the input's "
        "dtype.",
        epilog=f"Run '{PROG} demo' to try it on a bundled sample, "
        f"'{PROG} COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "denoise": "remove noise from an image",
        "inpaint": "fill missing pixels given a mask",
        "super-resolve": "upscale an image by an integer factor",
        "deconvolve": "undo the blur of a point-spread function",
    }
    for command, text in helps.items():
        sub = commands.add_parser(command, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("input", type=Path, metavar="IN", help="input image or OME-Zarr store")
        sub.add_argument(
            "-o",
            "--output",
            type=Path,
            metavar="OUT",
            help=f"output image, {'/'.join(s[1:] for s in WRITABLE_SUFFIXES)} (default: IN's "
            "name with a suffix, e.g. photo_denoised.png, beside IN)",
        )
        _add_task_inputs(sub, command, batch=False)
        _add_image_options(sub)
        sub.add_argument(
            "--estimate",
            action="store_true",
            help="only say how long the run would take (times a few steps on this image and "
            "device), then exit; nothing is written",
        )
        _add_run_options(sub)
    sub = commands.add_parser(
        "batch",
        help="restore many files (folders, globs, stacks) into a folder",
        description="Restore every input into OUTDIR, one output per file written as soon as "
        "it is done; a rerun skips the files already done. Pieces (slices, tiles) of all "
        "files run in this process or on a Dask cluster.",
    )
    tasks = sub.add_subparsers(dest="task", required=True, metavar="TASK")
    for command, text in helps.items():
        task = tasks.add_parser(command, help=text)
        task.add_argument("inputs", type=str, nargs="+", metavar="IN", help="files, globs, folders")
        task.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR")
        _add_task_inputs(task, command, batch=True)
        _add_image_options(task)
        place = task.add_argument_group("where pieces run")
        where = place.add_mutually_exclusive_group()
        where.add_argument(
            "--cluster",
            metavar="local[:N]",
            help="start a local Dask cluster of N worker processes (default: all cores)",
        )
        where.add_argument(
            "--scheduler",
            metavar="ADDRESS",
            help="a running Dask scheduler, e.g. tcp://host:8786 (also DASK_SCHEDULER_ADDRESS)",
        )
        place.add_argument(
            "--overwrite", action="store_true", help="restore files whose output exists too"
        )
        _add_run_options(task)
    sub = commands.add_parser(
        "demo",
        help="denoise a bundled sample and report PSNR",
        description="Denoise a noisy (σ=25) 256×256 crop of scikit-image's 'camera' image, "
        "write the result and the noisy input, and print the PSNR before and after.",
    )
    sub.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("napari-dip-demo.png"),
        metavar="OUT",
        help="where to write the result (default: napari-dip-demo.png); the noisy input goes "
        "beside it as OUT-noisy",
    )
    _add_run_options(sub)
    commands.add_parser("presets", help="list the presets with their step budgets")
    return parser
