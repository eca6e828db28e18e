"""The ``napari-dip`` command: restore image files with Deep Image Prior from a terminal.

``napari-dip denoise|inpaint|super-resolve IN -o OUT`` runs the numpy API on a TIFF/PNG/JPEG
file; ``napari-dip demo`` runs the main job on bundled sample data. torch is imported inside
the commands only, so ``napari-dip --help`` answers at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from ._tiling import tile_progress
from .io import (
    WRITABLE_SUFFIXES,
    ImageFileError,
    check_writable,
    read_axes,
    read_image,
    read_scale,
    write_image,
)

if TYPE_CHECKING:
    from .restore import Snapshot

PROG = "napari-dip"
# restore.STOP_RULES, without torch
STOP_CHOICES = ("auto", "wmv", "emv", "sharpness", "discrepancy", "none")
NOISE_CHOICES = ("gaussian", "poisson", "poisson-gaussian")  # _noise.NOISE_MODELS
DEFAULT_UPDATE_EVERY = 100  # the Python API's; how often the bar moves, results don't depend on it
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # the shell convention for "ended by SIGINT"

# command -> (API task, word for the default output name)
_TASKS = {
    "denoise": ("denoise", "denoised"),
    "inpaint": ("inpaint", "inpainted"),
    "super-resolve": ("super_resolve", "superres"),
}


class CliError(Exception):
    """A user error: shown as one line, ``napari-dip: error: ...``, without a traceback."""


class _StopOnCtrlC:
    """Turn the first Ctrl-C into a stop request the fit honours after its current step (it then
    yields a final snapshot, so the work so far is kept); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __call__(self) -> bool:  # the should_stop callback
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\n{PROG}: stopping after the current step (Ctrl-C again to stop at once)",
            file=sys.stderr,
        )

    def __enter__(self) -> _StopOnCtrlC:
        # Only the main thread may set handlers; an ignored SIGINT (a background job) stays so.
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
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


def _tile_workers(text: str) -> int | str:
    if text.lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def _percentiles(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two percentiles like 0.1,99.9, got {text!r}"
        ) from None
    return low, high


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; building it needs no torch, so ``--help`` answers at once."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Restore images with Deep Image Prior: no training data, no pretrained "
        "weights. Reads and writes TIFF, PNG and JPEG; the output has the input's dtype.",
        epilog=f"Run '{PROG} demo' to try it on a bundled sample, "
        f"'{PROG} COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = argparse.ArgumentParser(add_help=False)
    group = run.add_argument_group("run options")
    group.add_argument(
        "--preset",
        default="fast",
        help="network and schedule: 'fast' (default, light enough for a CPU), 'paper' (the "
        f"published configuration, slow on a CPU), or another that '{PROG} presets' lists",
    )
    group.add_argument(
        "--steps",
        type=_positive_int,
        help="most optimisation steps (default: from the preset; three times that with an "
        "automatic --stop)",
    )
    group.add_argument(
        "--stop",
        choices=STOP_CHOICES,
        default="auto",
        help="when to stop without ground truth: auto (default: wmv and discrepancy, whichever "
        "stops first), wmv (windowed moving variance of the outputs, ES-WMV), emv (its "
        "exponential variant), sharpness (blurriness/sharpness ratio settles), discrepancy "
        "(denoising only: the error to the input falls to what the noise alone leaves) or "
        "none (run all --steps); the result is the estimate the rule chose",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="same seed and device give the same result (0)"
    )
    group.add_argument(
        "--device",
        default="auto",
        help="auto (default: CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps",
    )
    group.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16", "float16"),
        default="auto",
        help="arithmetic of the network's forward pass; auto (default): bfloat16 where the CPU "
        "or GPU computes it natively, float16 on older CUDA GPUs, else float32",
    )
    group.add_argument(
        "--update-every",
        type=_positive_int,
        default=DEFAULT_UPDATE_EVERY,
        metavar="N",
        help=f"steps between progress updates (default {DEFAULT_UPDATE_EVERY})",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    group.add_argument(
        "--estimate",
        action="store_true",
        help="only say how long the run would take (times a few steps on this image and "
        "device), then exit; nothing is written",
    )

    image = argparse.ArgumentParser(add_help=False)
    image.add_argument("input", type=Path, metavar="IN", help="input image (TIFF, PNG or JPEG)")
    image.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help=f"output image, {'/'.join(s[1:] for s in WRITABLE_SUFFIXES)} "
        "(default: IN's name with a suffix, e.g. photo_denoised.png, beside IN)",
    )
    image.add_argument(
        "--channel-axis",
        type=int,
        metavar="AXIS",
        help="axis of the colour channels (default: -1 when the image is (H, W, 3) or "
        "(H, W, 4), none for a 2D image; required for other 3D images without --axes)",
    )
    image.add_argument(
        "--axes",
        metavar="AXES",
        help="what each axis of IN is, one letter each from T (time), Z (depth), C (channels), "
        "Y, X, e.g. ZYX or TZCYX (default: from the TIFF's ImageJ/OME metadata when it says)",
    )
    image.add_argument(
        "--mode",
        choices=("slices", "volume"),
        default="slices",
        help="for stacks: restore every YX slice/frame as a 2D image (slices, default) or "
        "every ZYX volume with a 3D network (volume)",
    )
    tuning = run.add_argument_group("tuning")
    tuning.add_argument("--lr", type=float, help="Adam learning rate (default: from the preset)")
    tuning.add_argument(
        "--tv-weight", type=float, default=0.0, help="total-variation weight (0 = plain DIP)"
    )
    tuning.add_argument(
        "--tile",
        type=_tile_size,
        default="auto",
        metavar="N|auto|none",
        help="restore a big image in overlapping N×N-pixel tiles, one fit each, blended "
        "without seams; auto (default): images over 1024² pixels (512² for 'paper'), in "
        "tiles of 512 px for 'fast' on a CPU, 256 for 'paper', twice that on CUDA; denoising "
        "with 'fast' on a CPU: images over about 204² in 144-px tiles, which is faster; "
        "none: never",
    )
    tuning.add_argument(
        "--tile-overlap",
        type=int,
        metavar="N",
        help="overlap of neighbouring tiles in pixels (default: 1/8 of the tile)",
    )
    tuning.add_argument(
        "--tile-workers",
        type=_tile_workers,
        default="auto",
        metavar="N|auto",
        help="tiles fitted at once, one thread each; auto (default): one per torch thread on "
        "a CPU (at most 8), which keeps the cores busier than one tile split over them; 1 "
        "elsewhere",
    )
    noise = run.add_argument_group("noise model and intensities")
    noise.add_argument(
        "--noise",
        choices=NOISE_CHOICES,
        default="gaussian",
        help="data term: gaussian (default, squared error), poisson (photon counts) or "
        "poisson-gaussian (photon counts plus camera read noise)",
    )
    noise.add_argument(
        "--gain",
        type=float,
        help="camera gain, intensity units per photon (poisson noises; default: estimated)",
    )
    noise.add_argument(
        "--offset",
        type=float,
        help="camera offset (dark level), intensity units (poisson noises; default: estimated)",
    )
    noise.add_argument(
        "--read-noise",
        type=float,
        help="read-noise standard deviation, intensity units (poisson-gaussian; default: "
        "estimated)",
    )
    noise.add_argument(
        "--normalize",
        type=_percentiles,
        metavar="LOW,HIGH",
        help="map these percentiles (e.g. 0.1,99.9) to the network's range instead of the "
        "min and max, so a few hot pixels don't squeeze the rest",
    )

    sub = commands.add_parser(
        "denoise",
        parents=[image, run],
        help="remove noise from an image",
        description="Remove noise from an image with Deep Image Prior.",
    )
    sub.set_defaults(func=_cmd_restore)
    sub = commands.add_parser(
        "inpaint",
        parents=[image, run],
        help="fill missing pixels given a mask",
        description="Fill the pixels of an image that a mask marks as missing.",
    )
    sub.add_argument(
        "--mask",
        type=Path,
        required=True,
        help="mask image, nonzero = missing; (H, W) or the "
        "image's shape (an RGB mask counts a pixel as missing if any channel is nonzero)",
    )
    sub.set_defaults(func=_cmd_restore)
    sub = commands.add_parser(
        "super-resolve",
        parents=[image, run],
        help="upscale an image by an integer factor",
        description="Upscale an image by an integer factor with Deep Image Prior.",
    )
    sub.add_argument("--factor", type=int, required=True, help="upscaling factor, integer >= 2")
    sub.set_defaults(func=_cmd_restore)

    sub = commands.add_parser(
        "demo",
        parents=[run],
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
    sub.set_defaults(func=_cmd_demo)
    sub = commands.add_parser("presets", help="list the presets with their step budgets")
    sub.set_defaults(func=_cmd_presets)
    return parser


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"{PROG}: {message}", file=sys.stderr)


def _start(
    image: np.ndarray, args: argparse.Namespace, task: str, **options: Any
) -> tuple[Iterator[Snapshot], _StopOnCtrlC]:
    """Check every argument through the API (cheap: no step runs yet); its ValueError and
    TypeError messages are plain enough to show the user as they are."""
    from .restore import restore_steps

    stop = _StopOnCtrlC()
    try:
        snapshots = restore_steps(
            image,
            task=task,  # type: ignore[arg-type]
            update_every=args.update_every,
            seed=args.seed,
            should_stop=stop,
            **_run_options(args),
            **options,
        )
    except (ValueError, TypeError) as err:
        raise CliError(str(err)) from None
    return snapshots, stop


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """What a run and its time estimate both take from the command line."""
    return {"preset": args.preset, "steps": args.steps, "stop": args.stop, "device": args.device}


def _follow(
    snapshots: Iterator[Snapshot], stop: _StopOnCtrlC, args: argparse.Namespace, task: str
) -> tuple[Snapshot, bool]:
    """Run to the end behind a progress bar; return the last snapshot and whether the user
    interrupted the run (Ctrl-C), in which case it holds the result so far."""
    from tqdm import tqdm

    from .engine import resolve_device
    from .restore import default_steps

    total = args.steps or default_steps(args.preset, task, args.stop)
    limit = "at most " if args.stop != "none" else ""
    _say(
        args,
        f"{limit}{total} steps, stop rule '{args.stop}', preset '{args.preset}', "
        f"on {resolve_device(args.device)}",
    )
    last = None
    bar = tqdm(
        total=total,
        desc=task.replace("_", "-"),
        unit="step",
        file=sys.stderr,
        disable=args.quiet,
        dynamic_ncols=True,
        mininterval=0,
    )
    with stop, bar:
        try:
            for last in snapshots:
                score = "" if last.score is None else f", score={last.score:.3g}"
                tiles = getattr(last, "tiles_total", 1)  # a big image restored in tiles
                if tiles > 1:
                    score += f", {tile_progress(last)}"
                if last.expected_steps is not None and last.stop_reason is None:
                    # tqdm's own ETA runs to the ceiling; the rule usually stops far sooner
                    score += f", expected end: step {last.expected_steps} (in {last.eta:.0f} s)"
                bar.set_postfix_str(f"loss={last.loss:.4g}{score}", refresh=False)
                bar.total = last.total_steps  # stacks: all pieces, shrinking as they stop
                bar.update(last.step - bar.n)
        except KeyboardInterrupt:  # a second Ctrl-C: drop the step in progress, keep the rest
            if last is None:
                raise
            return last, True
    assert last is not None
    return last, stop.requested


def _estimate(
    shape: tuple[int, ...],
    args: argparse.Namespace,
    task: str,
    channel_axis: int | None,
    axes: str | None,
    factor: int,
) -> str:
    """``--estimate``: time one 2D fit as the run would make it (the image, a slice of the
    stack, a tile of a big image) and count them all. Options are already checked."""
    from ._axes import make_plan
    from .estimate import describe, estimate_time

    slices = 1
    if axes is None:
        channel = None if channel_axis is None else channel_axis % len(shape)
        channels = 1 if channel is None else shape[channel]
        height, width = (n for i, n in enumerate(shape) if i != channel)
    else:
        plan = make_plan(shape, axes, args.mode)
        if plan.mode == "volume":
            raise CliError("--estimate times 2D fits; it cannot estimate a --mode volume run")
        height, width, channels = (plan.size(a) for a in "YXC")
        slices = plan.count
    one = estimate_time(
        (height, width),
        task=task,
        factor=factor if factor > 1 else None,
        channels=channels,
        precision=args.precision,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        tile_workers=args.tile_workers,
        **_run_options(args),
    )
    return describe(one, slices)


def _stopped(last: Snapshot) -> str:
    """Where and why the run ended, and which step's estimate is the result."""
    camera = getattr(last, "camera", None)
    used = (
        ""
        if camera is None
        else f"; camera: gain {camera.gain:.4g}, offset {camera.offset:.4g}, "
        f"read noise {camera.read_noise:.4g}"
    )
    return (
        f"stopped at step {last.step}/{last.total_steps} ({last.stop_reason}); "
        f"result: the estimate of step {last.best_step}{used}"
    )


def _tuning(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"tv_weight": args.tv_weight, "precision": args.precision}
    if args.lr is not None:
        options["lr"] = args.lr
    if args.noise != "gaussian":
        options["noise"] = args.noise
    for name in ("gain", "offset", "read_noise", "normalize"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.tile != "auto":
        options["tile"] = args.tile
    if args.tile_overlap is not None:
        options["tile_overlap"] = args.tile_overlap
    if args.tile_workers != "auto":
        options["tile_workers"] = args.tile_workers
    return options


def _default_output(path: Path, word: str) -> Path:
    suffix = path.suffix if path.suffix.lower() in WRITABLE_SUFFIXES else ".tif"
    return path.with_name(f"{path.stem}_{word}{suffix}")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return a.samefile(b)
    return a.resolve() == b.resolve()


def _auto_channel_axis(image: np.ndarray, given: int | None, path: Path) -> int | None:
    """``--channel-axis`` if given, -1 for (H, W, 3|4) colour images, None for 2D."""
    if given is not None or image.ndim != 3:
        return given
    if image.shape[-1] in (3, 4):
        return -1
    raise CliError(
        f"{path} has shape {image.shape}: give --channel-axis for a multichannel image "
        "(0 for (C, H, W), -1 for (H, W, C)), or --axes for a stack (e.g. --axes ZYX)"
    )


def _output_shape(
    shape: tuple[int, ...], channel_axis: int | None, factor: int, axes: str | None = None
) -> tuple:
    if axes is not None:  # only Y and X are upscaled
        return tuple(n * factor if a in "YX" else n for a, n in zip(axes, shape, strict=False))
    channel = None if channel_axis is None else channel_axis % len(shape)
    return tuple(n if i == channel else n * factor for i, n in enumerate(shape))


def _axes(image: np.ndarray, args: argparse.Namespace, path: Path) -> str | None:
    """``--axes``, else the TIFF's own axes for a stack (3+ dimensions) unless
    ``--channel-axis`` is given; ``None`` means the 2D path with a channel axis."""
    if args.axes is not None:
        if args.channel_axis is not None:
            raise CliError("give either --axes or --channel-axis, not both")
        return args.axes.upper()
    axes = None if args.channel_axis is not None or image.ndim < 3 else read_axes(path)
    if axes is None and args.mode != "slices":
        raise CliError(f"--mode {args.mode} needs the axes of {path}: give --axes (e.g. ZYX)")
    return axes


def _cmd_restore(args: argparse.Namespace) -> int:
    """denoise / inpaint / super-resolve: read, check everything, run, write."""
    task, word = _TASKS[args.command]
    source: Path = args.input
    output: Path = args.output or _default_output(source, word)
    for other, what in [(source, "input"), (getattr(args, "mask", None), "mask")]:
        if other is not None and _same_file(output, other):
            raise CliError(f"the output {output} is the {what} file; choose another -o")
    image = read_image(source)
    axes = _axes(image, args, source)
    if axes is None:
        channel_axis = _auto_channel_axis(image, args.channel_axis, source)
        options: dict[str, Any] = {"channel_axis": channel_axis, **_tuning(args)}
    else:
        channel_axis = None
        options = {"axes": axes, "mode": args.mode, **_tuning(args)}
    factor = 1
    if task == "inpaint":
        mask = read_image(args.mask)
        if channel_axis is None and mask.ndim == 3 and mask.shape[2] in (3, 4):
            mask = mask[..., :3].any(axis=-1)  # a mask drawn in colour, for a grey image
        options["mask"] = mask
    elif task == "super_resolve":
        factor = options["factor"] = args.factor
    start = time.perf_counter()
    snapshots, stop = _start(image, args, task, **options)
    if args.estimate:
        print(_estimate(image.shape, args, task, channel_axis, axes, factor))
        return 0
    check_writable(output, image.dtype, _output_shape(image.shape, channel_axis, factor, axes))
    shape = "×".join(map(str, image.shape))
    _say(args, f"{args.command} {source} ({shape}, {image.dtype}) -> {output}")
    if axes is not None:
        unit = "ZYX volume" if args.mode == "volume" else "YX slice"
        _say(args, f"axes {axes}: every {unit} on its own; the step budget below is per {unit}")
    last, interrupted = _follow(snapshots, stop, args, task)
    scale = read_scale(source)  # the pixel size goes along; super-resolution makes it smaller
    scale |= {k: float(scale[k]) / factor for k in ("X", "Y") if k in scale}  # type: ignore[arg-type]
    write_image(output, last.result(), axes=axes, scale=scale)
    if interrupted:
        print(
            f"{PROG}: interrupted at step {last.step}/{last.total_steps}; "
            f"wrote the result so far to {output}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    _say(args, _stopped(last))
    _say(args, f"wrote {output} in {time.perf_counter() - start:.1f} s")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    """Print every preset: the list lives in the engine, so it is never out of date here."""
    from .engine import PRESETS

    for name, preset in PRESETS.items():
        budgets = ", ".join(f"{task} {s.steps}" for task, s in preset.tasks.items())
        adam = f"lr {preset.lr:g}, betas {preset.betas[0]:g}/{preset.betas[1]:g}"
        print(f"{name:16} {preset.description}\n{'':16} steps: {budgets}; Adam {adam}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job on bundled data, with the numbers that show it worked."""
    from skimage.metrics import peak_signal_noise_ratio

    from . import samples

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
    snapshots, stop = _start(noisy, args, "denoise", **_tuning(args))
    last, interrupted = _follow(snapshots, stop, args, "denoise")
    seconds = time.perf_counter() - start
    result = last.result()
    write_image(output, result)
    write_image(noisy_path, noisy)
    before = peak_signal_noise_ratio(clean, noisy, data_range=255)
    after = peak_signal_noise_ratio(clean, result, data_range=255)
    print(f"PSNR noisy input: {before:.2f} dB")
    print(f"PSNR restored:    {after:.2f} dB ({after - before:+.2f} dB)")
    print(f"time: {seconds:.1f} s for {last.step} steps")
    print(_stopped(last))
    print(f"wrote {output} (noisy input: {noisy_path})")
    if interrupted:
        print(f"{PROG}: interrupted at step {last.step}/{last.total_steps}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-dip`` script; returns the exit status instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors (status 2)
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        return args.func(args)
    except (CliError, ImageFileError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
