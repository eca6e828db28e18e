"""The ``napari-dip`` command: restore image files with Deep Image Prior from a terminal.

``napari-dip denoise|inpaint|super-resolve|deconvolve IN -o OUT`` restores one file,
``napari-dip batch TASK IN... -o OUTDIR`` many, ``napari-dip demo`` runs the main job on a
bundled sample. torch is imported inside the commands only, so ``--help`` answers at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..io import ImageFileError
from .commands import EXIT_ERROR, EXIT_INTERRUPTED, CliError, cmd_demo, cmd_presets, cmd_restore
from .parser import PROG, build_parser

__all__ = ["PROG", "build_parser", "main"]


def _passive_waiting() -> None:
    """This process is ours: let torch's OpenMP threads sleep rather than spin while they wait
    (spinning threads on busy cores made steps 100× slower here). Only before torch is
    imported, and a value the user set wins."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-dip`` script; returns the exit status instead of exiting.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from napari_dip import samples
    >>> from napari_dip.io import read_image, write_image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_image(folder / "cells.png", samples.noisy(sigma=25, size=32)[0])
    >>> main(["denoise", str(folder / "cells.png"), "-o", str(folder / "out.png"),
    ...       "--steps", "3", "-q"])
    0
    >>> read_image(folder / "out.png").shape
    (32, 32)
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors (status 2)
        return exit_.code if isinstance(exit_.code, int) else 0
    _passive_waiting()
    try:
        if args.command == "batch":
            from .batch import cmd_batch

            return cmd_batch(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "presets":
            return cmd_presets(args)
        return cmd_restore(args)
    except (CliError, ImageFileError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except (RuntimeError, MemoryError) as err:  # every piece failed (torch's errors included)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"{PROG}: error: the restoration failed: {first}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
