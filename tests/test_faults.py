"""Fault injection: what a run, the API and the CLI do when a piece fails, the user presses
Ctrl-C, the disk is full or unwritable, or an input file is truncated or mislabeled.

Each fault is injected where it would happen (a piece's fit raising, a real SIGINT, ``os.replace``
or ``tifffile.imwrite`` raising ``ENOSPC``, bytes cut off a file) and the outcome checked: the
finished pieces are kept and the failure reported; nothing partial is left on disk; every error
reaches the user as one clear line. Images are tiny and fits take 1–2 steps.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

import napari_dip
from napari_dip import RestorationError, restore_steps, samples
from napari_dip.cli import main
from napari_dip.io import ImageFileError, read_image, read_ome_zarr, write_image
from napari_dip.pipeline import executors

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN = {"steps": 2, "stop": "none", "device": "cpu", "update_every": 1}
CLI_RUN = ["--steps", "2", "--stop", "none", "--device", "cpu", "--update-every", "1", "-q"]
SIDE = 28  # 16-pixel tiles overlapping by 2 cut it into 2 × 2
TILES = {"tile": 16, "tile_overlap": 2}
# The pixels only tile k covers (tiles start at 0 and 12 along each axis)
ONLY = {0: np.s_[:12, :12], 1: np.s_[:12, 16:], 2: np.s_[16:, :12], 3: np.s_[16:, 16:]}


@pytest.fixture
def noisy() -> np.ndarray:
    return samples.noisy(sigma=25, size=SIDE, seed=0)[0]


def fail_piece(monkeypatch, when, after: int = 0, error: BaseException | None = None) -> list:
    """Make the fit of every piece for which ``when(piece)`` holds raise after ``after`` of its
    snapshots; returns the pieces that were failed."""
    real = executors.fit_piece
    failed = []

    def fit_piece(task, should_stop):
        run = real(task, should_stop)
        try:
            for k, snap in enumerate(run):
                if k == after and when(task.piece):
                    break
                yield snap
            else:
                return
        finally:
            run.close()
        failed.append(task.piece)
        raise error or RuntimeError(f"injected fault in {task.piece}")

    monkeypatch.setattr(executors, "fit_piece", fit_piece)
    return failed


def cli(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in-process: its exit status and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def one_error_line(text: str) -> str:
    """The user-facing error: one line, no traceback."""
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("napari-dip: error: "), text
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write may have left (``write_image`` writes ``.NAME-XXXX.ext``)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- a piece that fails: the rest are kept, the failure reported -----------------------------


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(("k", "after"), [(0, 0), (3, 0), (1, 1)])
def test_a_failing_tile_is_reported_and_the_others_kept(noisy, monkeypatch, k, after, workers):
    """Tile k of 4 raises (at once, or after its first step): the other three are restored,
    tile k's region keeps the input, the failure names the tile."""
    failed = fail_piece(monkeypatch, lambda piece: piece.tile == k, after=after)
    before = noisy.copy()
    last = list(restore_steps(noisy, workers=workers, **TILES, **RUN))[-1]
    assert last.failures == (f"tile {k + 1}: RuntimeError: injected fault in {failed[0]}",)
    assert "1 failed" in last.stop_reason and last.pieces_done == 4 == last.pieces
    with pytest.raises(RestorationError, match="injected fault") as caught:
        napari_dip.denoise(noisy, workers=workers, **TILES, **RUN)
    partial = caught.value.result
    assert caught.value.failures == last.failures
    assert partial.shape == noisy.shape and partial.dtype == noisy.dtype
    np.testing.assert_array_equal(partial[ONLY[k]], noisy[ONLY[k]])  # the input where k lay
    ran = ONLY[3 - k]  # the opposite corner's tile ran
    assert np.abs(partial[ran].astype(float) - noisy[ran]).mean() > 3
    np.testing.assert_array_equal(noisy, before)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_a_failing_slice_is_reported_and_the_others_kept(monkeypatch, k):
    stack = np.stack([samples.noisy(sigma=25, size=16, seed=s)[0] for s in range(3)])
    fail_piece(monkeypatch, lambda piece: piece.part == k)
    last = list(restore_steps(stack, axes="ZYX", **RUN))[-1]
    assert len(last.failures) == 1 and last.failures[0].startswith(f"slice {k}: RuntimeError")
    assert "1 failed" in last.stop_reason
    with pytest.raises(RestorationError, match="injected fault") as caught:
        napari_dip.denoise(stack, axes="ZYX", **RUN)
    partial = caught.value.result
    np.testing.assert_array_equal(partial[k], stack[k])  # kept as it was
    for j in {0, 1, 2} - {k}:
        assert np.abs(partial[j].astype(float) - stack[j]).mean() > 3  # restored


def test_every_piece_failing_raises_the_first_error(noisy, monkeypatch):
    """Nothing restored: the API raises the pieces' own error (no partial result to give)."""
    fail_piece(monkeypatch, lambda piece: True, error=MemoryError("out of memory"))
    with pytest.raises(MemoryError, match="out of memory"):
        napari_dip.denoise(noisy, **TILES, **RUN)


def test_cli_writes_the_rest_when_a_tile_fails(noisy, tmp_path, monkeypatch):
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    iio.imwrite(source, noisy)
    fail_piece(monkeypatch, lambda piece: piece.tile == 3)
    code, err = cli(["denoise", source, "-o", out, "--tile", "16", "--tile-overlap", "2", *CLI_RUN])
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("napari-dip: error: tile 4: RuntimeError: injected fault")
    assert "1 of 4 pieces failed; wrote the rest (the input where they failed)" in lines[-1]
    partial = iio.imread(out)
    np.testing.assert_array_equal(partial[ONLY[3]], noisy[ONLY[3]])
    assert np.abs(partial[ONLY[0]].astype(float) - noisy[ONLY[0]]).mean() > 3
    assert leftovers(tmp_path) == []


def test_cli_says_one_line_when_every_piece_fails(noisy, tmp_path, monkeypatch):
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    iio.imwrite(source, noisy)
    fail_piece(monkeypatch, lambda piece: True)
    code, err = cli(["denoise", source, "-o", out, *CLI_RUN])
    assert code == 1 and "injected fault" in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


@pytest.fixture
def three_files(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        iio.imwrite(folder / f"f{k}.png", samples.noisy(sigma=25, size=16, seed=k)[0])
    return folder


def _log(folder: Path) -> list[dict]:
    text = (folder / "napari-dip-batch.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_batch_keeps_the_files_whose_pieces_ran(three_files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    fail_piece(monkeypatch, lambda piece: piece.job == 1, after=1)
    code, err = cli(["batch", "denoise", three_files, "-o", out, "--workers", "1", *CLI_RUN])
    assert code == 1
    assert "Traceback" not in err and f"{three_files / 'f1.png'}: " in err
    assert sorted(p.name for p in out.iterdir()) == [
        "f0_denoised.png",
        "f2_denoised.png",
        "napari-dip-batch.jsonl",
    ]
    failed = [e for e in _log(out) if e["event"] == "failed"]
    assert [Path(e["file"]).name for e in failed] == ["f1.png"]
    assert "injected fault" in failed[0]["reason"]
    monkeypatch.undo()  # a rerun restores just the missing file
    seen = len(_log(out))
    assert cli(["batch", "denoise", three_files, "-o", out, "--workers", "1", *CLI_RUN])[0] == 0
    events = [e["event"] for e in _log(out)[seen:] if e["event"] != "piece"]
    assert sorted(events) == ["done", "skipped", "skipped"]


# --- Ctrl-C ----------------------------------------------------------------------------------


@pytest.fixture
def sigint_default():
    """Start from the interactive default (a background job inherits SIGINT ignored, and the
    CLI rightly leaves an ignored SIGINT alone)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt_piece(monkeypatch, when, times: int) -> None:
    """Send ``times`` real SIGINTs from inside the fit of the pieces ``when`` picks, after their
    first snapshot (so during a step of the run, as a user's Ctrl-C would come)."""
    real = executors.fit_piece

    def fit_piece(task, should_stop):
        for k, snap in enumerate(real(task, should_stop)):
            yield snap
            if k == 0 and when(task.piece):
                for _ in range(times):
                    signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(executors, "fit_piece", fit_piece)


def test_one_ctrl_c_stops_a_single_file_run_and_keeps_its_result(
    noisy, tmp_path, monkeypatch, sigint_default
):
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    iio.imwrite(source, noisy)
    interrupt_piece(monkeypatch, lambda piece: True, times=1)
    code, err = cli(["denoise", source, "-o", out, *CLI_RUN, "--steps", "1000"])
    assert code == 130
    assert "interrupted after 2 steps; wrote the result so far" in err
    assert iio.imread(out).shape == noisy.shape and leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler given back


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_result_so_far(
    noisy, tmp_path, monkeypatch, sigint_default
):
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    iio.imwrite(source, noisy)
    interrupt_piece(monkeypatch, lambda piece: True, times=2)
    code, err = cli(["denoise", source, "-o", out, *CLI_RUN, "--steps", "1000"])
    assert "Traceback" not in err
    assert code == 130 and "wrote the result so far" in err
    assert iio.imread(out).shape == noisy.shape and leftovers(tmp_path) == []


@pytest.mark.parametrize("times", [1, 2])
def test_ctrl_c_in_a_batch_keeps_the_finished_files(
    three_files, tmp_path, monkeypatch, sigint_default, times
):
    """Ctrl-C while the second file runs: the first is written, the second is not (its result
    would be partial), nor the third; exit 130. A second Ctrl-C ends at once, the same way."""
    out = tmp_path / "out"
    interrupt_piece(monkeypatch, lambda piece: piece.job == 1, times=times)
    code, err = cli(["batch", "denoise", three_files, "-o", out, "--workers", "1", *CLI_RUN])
    assert code == 130
    assert "Traceback" not in err
    assert ("stopping after the current step" if times == 1 else "interrupted") in err
    assert sorted(p.name for p in out.iterdir()) == ["f0_denoised.png", "napari-dip-batch.jsonl"]
    assert iio.imread(out / "f0_denoised.png").shape == (16, 16)
    done = [Path(e["file"]).name for e in _log(out) if e["event"] == "done"]
    assert done == ["f0.png"]
    # the rerun skips the finished file and restores the others
    monkeypatch.undo()
    code, _ = cli(["batch", "denoise", three_files, "-o", out, "--workers", "1", *CLI_RUN])
    assert code == 0
    assert sorted(p.name for p in out.glob("*.png")) == [f"f{k}_denoised.png" for k in range(3)]


# --- a full disk, an unwritable folder: nothing partial, one clear line ----------------------


def test_an_unwritable_output_folder_is_refused_before_the_run(noisy, tmp_path, monkeypatch):
    source, folder = tmp_path / "in.png", tmp_path / "locked"
    iio.imwrite(source, noisy)
    folder.mkdir()
    folder.chmod(0o555)
    real_access = os.access

    def access(path, mode, **kwargs):  # what the kernel says to a user who is not root
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    ran = fail_piece(monkeypatch, lambda piece: True)  # any fit would be recorded here
    try:
        code, err = cli(["denoise", source, "-o", folder / "out.png", *CLI_RUN])
    finally:
        folder.chmod(0o755)
    assert code == 1 and ran == []
    assert one_error_line(err).endswith(f"the folder {folder} is not writable")
    assert list(folder.iterdir()) == []


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    ("where", "suffix"),
    [("os.replace", ".png"), ("os.replace", ".tif"), ("tifffile.imwrite", ".tif")],
)
def test_a_full_disk_leaves_nothing_and_says_so(noisy, tmp_path, monkeypatch, where, suffix):
    source, out = tmp_path / "in.png", tmp_path / f"out{suffix}"
    iio.imwrite(source, noisy)
    if where == "os.replace":
        monkeypatch.setattr(os, "replace", _no_space)
    else:
        real = tifffile.imwrite

        def half_then_full(path, data, **kwargs):  # some bytes reach the disk, then no room
            real(path, data, **kwargs)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            _no_space()

        monkeypatch.setattr(tifffile, "imwrite", half_then_full)
    code, err = cli(["denoise", source, "-o", out, *CLI_RUN])
    assert code == 1
    assert (
        one_error_line(err) == f"napari-dip: error: {out}: cannot write (No space left on device)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_a_full_disk_keeps_no_uncertainty_map_without_its_result(noisy, tmp_path, monkeypatch):
    source, out = tmp_path / "in.png", tmp_path / "out.tif"
    iio.imwrite(source, noisy)
    real = tifffile.imwrite

    def full_for_the_result(path, data, **kwargs):  # the map (float32) fits, the result not
        if data.dtype != np.float32:
            _no_space()
        real(path, data, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", full_for_the_result)
    code, err = cli(["denoise", source, "-o", out, "--ensemble", "2", *CLI_RUN])
    assert code == 1 and "No space left on device" in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_a_write_that_loses_its_folder_is_one_line(noisy, tmp_path, monkeypatch):
    """The folder turned read-only (or vanished) during the run: the temporary file cannot be
    made. One line, nothing left."""
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    iio.imwrite(source, noisy)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    code, err = cli(["denoise", source, "-o", out, *CLI_RUN])
    assert code == 1
    assert one_error_line(err) == f"napari-dip: error: {out}: cannot write (Permission denied)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_a_full_disk_in_a_batch_fails_that_file_only(three_files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = os.replace

    def full_for_f1(src, dst, *args, **kwargs):
        if Path(dst).name == "f1_denoised.png":
            _no_space()
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full_for_f1)
    code, err = cli(["batch", "denoise", three_files, "-o", out, "--workers", "1", *CLI_RUN])
    assert code == 1 and "Traceback" not in err
    assert "f1_denoised.png: cannot write (No space left on device)" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "f0_denoised.png",
        "f2_denoised.png",
        "napari-dip-batch.jsonl",
    ]


def test_write_image_raises_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", _no_space)
    with pytest.raises(ImageFileError, match="cannot write \\(No space left on device\\)"):
        write_image(tmp_path / "x.tif", np.zeros((4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


# --- truncated, mislabeled and broken input files --------------------------------------------


def _tiff_bytes(image: np.ndarray) -> bytes:
    with io.BytesIO() as buffer:
        tifffile.imwrite(buffer, image)
        return buffer.getvalue()


def _png_bytes(image: np.ndarray) -> bytes:
    return iio.imwrite("<bytes>", image, extension=".png")


def _broken_files(image: np.ndarray) -> dict[str, tuple[bytes, str | None]]:
    """name -> (content, the words of the error; None: it reads, as the image)."""
    tiff, png = _tiff_bytes(image), _png_bytes(image)
    rng = np.random.default_rng(0)
    return {
        "png-named.tif": (png, None),  # the reader goes by the first bytes, not the name
        "tiff-named.png": (tiff, None),
        "header-only.tif": (tiff[:8], "holds no image data"),
        "cut-ifd.tif": (tiff[:100], "cannot read it as a TIFF file"),
        "cut-half.tif": (tiff[: len(tiff) // 2], "cannot read it as a TIFF file"),
        "cut-end.tif": (tiff[:-10], "cannot read it as a TIFF file"),
        "cut.png": (png[: len(png) // 2], "cannot read it as an image file"),
        "random.png": (rng.bytes(500), "cannot read it as an image file"),
        "random.tif": (rng.bytes(500), "cannot read it as an image file"),
        "empty.png": (b"", "the file is empty"),
        "text.png": (b"not a picture\n", "cannot read it as an image file"),
    }


@pytest.mark.parametrize("name", list(_broken_files(np.zeros((2, 2), np.uint8))))
def test_truncated_and_mislabeled_files(noisy, tmp_path, name):
    content, words = _broken_files(noisy)[name]
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out.tif"
    if words is None:
        np.testing.assert_array_equal(read_image(path), noisy)
        assert cli(["denoise", path, "-o", out, *CLI_RUN])[0] == 0
        assert tifffile.imread(out).shape == noisy.shape
        return
    with pytest.raises(ImageFileError, match=words) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    iio.imwrite(tmp_path / "ok.png", noisy)
    for argv in (
        ["denoise", path, "-o", out],
        ["inpaint", tmp_path / "ok.png", "--mask", path, "-o", out],
        ["deconvolve", tmp_path / "ok.png", "--psf", path, "-o", out],
    ):
        code, err = cli([*argv, *CLI_RUN])
        assert code == 1
        assert one_error_line(err) == f"napari-dip: error: {message}"
        assert not out.exists()
    assert path.read_bytes() == content  # untouched


def test_a_folder_named_like_an_image_is_not_a_file(tmp_path):
    (tmp_path / "x.png").mkdir()
    with pytest.raises(ImageFileError, match="not a file"):
        read_image(tmp_path / "x.png")
    code, err = cli(["denoise", tmp_path / "x.png", "-o", tmp_path / "o.png", *CLI_RUN])
    assert code == 1 and one_error_line(err).endswith("not a file")


def _ome_zarr(path: Path, stack: np.ndarray, fmt: int = 2, multiscales=None) -> Path:
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    root.create_array("0", data=stack, chunks=(1, *stack.shape[1:]))
    axes = [{"name": a, "type": "space"} for a in "zyx"]
    if multiscales is None:
        multiscales = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0"}]}]
    if fmt == 2:
        root.attrs["multiscales"] = multiscales
    else:
        root.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    return path


def _remove(path: Path) -> None:
    path.unlink()


def _corrupt_chunk(store: Path) -> None:
    """Overwrite the second slice's chunk with bytes no codec can read."""
    chunks = sorted(
        p for p in (store / "0").rglob("*") if p.is_file() and not p.name.startswith((".", "zarr"))
    )
    chunks[1].write_bytes(b"\x00garbage" * 8)


ZARR_FAULTS = {
    # name: (zarr format, multiscales or None, damage, words of the error)
    "v2 array without .zarray": (2, None, lambda s: _remove(s / "0" / ".zarray"), "'0' is missing"),
    "v3 array without zarr.json": (
        3,
        None,
        lambda s: _remove(s / "0" / "zarr.json"),
        "'0' is missing",
    ),
    "v2 group without .zgroup": (
        2,
        None,
        lambda s: _remove(s / ".zgroup"),
        "cannot read it as a Zarr",
    ),
    "v3 group without zarr.json": (
        3,
        None,
        lambda s: _remove(s / "zarr.json"),
        "cannot read it as a Zarr",
    ),
    "v3 group json broken": (3, None, lambda s: (s / "zarr.json").write_text("{nope"), "Zarr"),
    "v3 array json incomplete": (
        3,
        None,
        lambda s: (s / "0" / "zarr.json").write_text('{"zarr_format": 3}'),
        "'0' is missing or not a readable array",
    ),
    "multiscales a dict": (2, {"datasets": "0"}, None, "multiscales metadata is incomplete"),
    "multiscales without datasets": (2, [{"axes": []}], None, "multiscales metadata is incomplete"),
    "no datasets": (2, [{"datasets": []}], None, "multiscales metadata is incomplete"),
    "dataset path missing": (2, [{"datasets": [{"path": "9"}]}], None, "'9' is missing"),
    "dataset path not a string": (2, [{"datasets": [{"path": 5}]}], None, "dataset 5"),
    "entries not objects": (3, ["x"], None, "multiscales metadata is incomplete"),
    "a corrupt chunk": (2, None, _corrupt_chunk, "cannot read its pixels"),
}


@pytest.mark.parametrize("name", list(ZARR_FAULTS))
def test_a_broken_ome_zarr_is_a_clear_error(tmp_path, name):
    fmt, multiscales, damage, words = ZARR_FAULTS[name]
    stack = np.stack([samples.noisy(sigma=25, size=16, seed=s)[0] for s in range(2)])
    store = _ome_zarr(tmp_path / "cells.ome.zarr", stack, fmt, multiscales)
    if damage is not None:
        damage(store)
    out = tmp_path / "out.tif"
    if name == "a corrupt chunk":  # opens lazily; the pixels fail when their turn comes
        array, axes = read_ome_zarr(store)
        assert axes == "ZYX" and array.shape == stack.shape
        np.testing.assert_array_equal(array[0], stack[0])
        with pytest.raises(ImageFileError, match=words):
            array[1]
    else:
        with pytest.raises(ImageFileError, match=words) as caught:
            read_ome_zarr(store)
        assert str(caught.value).startswith(f"{store}: ")
    code, err = cli(["denoise", store, "-o", out, *CLI_RUN])
    assert code == 1
    line = one_error_line(err)
    assert f"{store}: " in line and words.lower() in line.lower()
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_broken_store_in_a_batch_fails_alone(three_files, tmp_path):
    stack = np.stack([samples.noisy(sigma=25, size=16, seed=s)[0] for s in range(2)])
    store = _ome_zarr(three_files / "cells.ome.zarr", stack)
    _corrupt_chunk(store)
    out = tmp_path / "out"
    code, err = cli(["batch", "denoise", three_files, "-o", out, "--workers", "1", *CLI_RUN])
    assert code == 1 and "Traceback" not in err and "cannot read its pixels" in err
    assert sorted(p.name for p in out.glob("*_denoised.*")) == [
        f"f{k}_denoised.png" for k in range(3)
    ]
