"""The single-file commands (denoise, inpaint, super-resolve, deconvolve), demo and presets."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..files import WORDS, FileJob, default_output, open_file_job
from ..io import check_writable, write_image
from .parser import PROG, TASK_COMMANDS, run_options
from .progress import StopOnCtrlC, describe_end, follow

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "CliError", "psf_of", "say"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # the shell convention for "ended by SIGINT"


class CliError(Exception):
    """A user error: shown as one line, ``napari-dip: error: ...``, without a traceback."""


def say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"{PROG}: {message}", file=sys.stderr)


def psf_of(args: argparse.Namespace) -> Any:
    """The PSF a deconvolution command asks for: a file, or a model's parameters."""
    if getattr(args, "psf", None) is not None:
        return args.psf
    if getattr(args, "psf_sigma", None) is not None:
        from ..psf import gaussian_psf

        return gaussian_psf(args.psf_sigma)
    text = getattr(args, "psf_widefield", None)
    if text is None:
        return None
    from ..psf import widefield_psf

    try:
        na, wavelength, index, pixel = (float(v) for v in text.split(","))
    except ValueError:
        raise CliError(f"--psf-widefield takes NA,WAVELENGTH,INDEX,PIXEL, got {text!r}") from None
    return widefield_psf(na, wavelength, index, pixel)


def _plan(job: FileJob) -> Any:
    from ..pipeline.plan import make_plan

    return make_plan(job.request)


def _header(args: argparse.Namespace, plan: Any) -> str:
    pieces = plan.piece_count
    parts = len(plan.parts)
    cut = ""
    if pieces > 1:
        noun = "volumes" if plan.request.stack and plan.request.stack.mode == "volume" else "slices"
        counts = [f"{parts} {noun}"] if parts > 1 else []
        counts += [f"{plan.tiles_per_part} tiles"] if plan.tiles is not None else []
        cut = f"{pieces} pieces ({' × '.join(counts)}), "
    limit = "at most " if args.stop != "none" else ""
    each = " each" if pieces > 1 else ""
    return (
        f"{cut}{limit}{plan.settings.steps} steps{each}, stop rule '{args.stop}', "
        f"preset '{args.preset}', on {plan.device}"
    )


def _estimate(job: FileJob, args: argparse.Namespace) -> str:
    """``--estimate``: time one 2D fit as the run would make it (the image, a slice of the
    stack, a tile of a big image) and count them all."""
    from ..estimate import describe, estimate_time

    request = job.request
    options = run_options(args)
    options.pop("update_every", None)
    options.pop("seed", None)
    slices = 1
    if request.stack is None:
        shape = tuple(request.image.shape)
        channel = request.channel_axis
        channels = 1 if channel is None else shape[channel]
        height, width = (n for i, n in enumerate(shape) if i != channel)
    else:
        if request.stack.mode == "volume":
            raise CliError("--estimate times 2D fits; it cannot estimate a --mode volume run")
        height, width, channels = (request.stack.size(a) for a in "YXC")
        slices = request.stack.count
    keep = ("preset", "steps", "stop", "device", "precision", "tile", "tile_overlap", "workers")
    one = estimate_time(
        (height, width),
        task=request.task,
        factor=request.factor if request.factor > 1 else None,
        channels=channels,
        **{k: options[k] for k in keep},
    )
    return describe(one, slices)


def cmd_restore(args: argparse.Namespace) -> int:
    """denoise / inpaint / super-resolve / deconvolve one file: read, check, run, write."""
    task = TASK_COMMANDS[args.command]
    source: Path = args.input
    output: Path = args.output or default_output(source, WORDS[task])
    try:
        job = open_file_job(
            source,
            output,
            task=task,
            axes=args.axes,
            mode=args.mode,
            channel_axis=args.channel_axis,
            mask=getattr(args, "mask", None),
            factor=getattr(args, "factor", None),
            psf=psf_of(args),
            options=run_options(args),
        )
        plan = _plan(job)
        if args.estimate:
            print(_estimate(job, args))
            return 0
    except (ValueError, TypeError) as err:
        raise CliError(str(err)) from None
    from ..pipeline.run import run_jobs

    start = time.perf_counter()
    shape = "×".join(map(str, job.request.image.shape))
    say(args, f"{args.command} {source} ({shape}, {job.request.image.dtype}) -> {output}")
    if job.axes is not None:
        unit = "ZYX volume" if args.mode == "volume" else "YX slice"
        say(args, f"axes {job.axes}: every {unit} on its own")
    say(args, _header(args, plan))
    stop = StopOnCtrlC(PROG)
    try:
        last, interrupted = follow(  # previews: a second Ctrl-C still has the best so far
            run_jobs([plan], should_stop=stop, previews=True),
            stop,
            args.command,
            args.quiet,
        )
    except (ValueError, TypeError) as err:  # what only the pixels show (NaN, a constant image)
        raise CliError(str(err)) from None
    job.write(last.result(), last.uncertainty())
    if interrupted:
        print(
            f"{PROG}: interrupted after {last.step} steps; wrote the result so far to {output}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    say(args, describe_end(last))
    if last.failures:
        for failure in last.failures:
            print(f"{PROG}: error: {failure}", file=sys.stderr)
        print(
            f"{PROG}: {len(last.failures)} of {last.pieces} pieces failed; wrote the rest "
            f"(the input where they failed) to {output}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    say(args, f"wrote {output} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    """Print every preset: the list lives in the engine, so it is never out of date here."""
    from ..engine import PRESETS

    for name, preset in PRESETS.items():
        budgets = ", ".join(f"{task} {s.steps}" for task, s in preset.tasks.items())
        adam = f"lr {preset.lr:g}, betas {preset.betas[0]:g}/{preset.betas[1]:g}"
        print(f"{name:16} {preset.description}\n{'':16} steps: {budgets}; Adam {adam}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on bundled data, with the numbers that show it worked."""
    from skimage.metrics import peak_signal_noise_ratio

    from .. import samples
    from ..pipeline.plan import make_plan
    from ..pipeline.request import make_request
    from ..pipeline.run import run_jobs

    output: Path = args.output
    noisy_path = output.with_name(f"{output.stem}-noisy{output.suffix}")
    size = 256
    check_writable(output, np.dtype(np.uint8), (size, size))
    noisy, clean = samples.noisy(sigma=25, size=size, seed=0)
    print(
        f"{PROG} demo: denoising a {size}×{size} crop of scikit-image's 'camera' image "
        "with Gaussian noise σ=25",
        flush=True,
    )
    start = time.perf_counter()
    try:
        plan = make_plan(make_request(noisy, task="denoise", **run_options(args)))
    except (ValueError, TypeError) as err:
        raise CliError(str(err)) from None
    say(args, _header(args, plan))
    stop = StopOnCtrlC(PROG)
    last, interrupted = follow(
        run_jobs([plan], should_stop=stop, previews=False), stop, "denoise", args.quiet
    )
    seconds = time.perf_counter() - start
    result = last.result()
    write_image(output, result)
    write_image(noisy_path, noisy)
    before = peak_signal_noise_ratio(clean, noisy, data_range=255)
    after = peak_signal_noise_ratio(clean, result, data_range=255)
    print(f"PSNR noisy input: {before:.2f} dB")
    print(f"PSNR restored:    {after:.2f} dB ({after - before:+.2f} dB)")
    print(f"time: {seconds:.1f} s for {last.step} steps")
    print(describe_end(last))
    print(f"wrote {output} (noisy input: {noisy_path})")
    if interrupted:
        print(f"{PROG}: interrupted after {last.step} steps", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
