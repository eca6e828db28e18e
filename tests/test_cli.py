"""The ``napari-dip`` command line, run in-process through ``main([...])`` on small real files.

Images are tiny and step counts small so the whole file stays fast on a CPU; what is checked is
behaviour (files written with the right shape and dtype, messages, exit codes), not quality.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from napari_dip import inpaint, samples
from napari_dip.cli import main
from napari_dip.engine import PRESETS

H, W = 40, 56  # the network pads to multiples of 32, so this costs what a 64×64 image does
FAST = ["--steps", "10", "--update-every", "5"]


@pytest.fixture
def noisy() -> np.ndarray:
    return samples.noisy(size=W)[0][:H]


@pytest.fixture
def grey_png(tmp_path: Path, noisy: np.ndarray) -> Path:
    path = tmp_path / "grey.png"
    iio.imwrite(path, noisy)
    return path


@pytest.fixture
def grey16_tif(tmp_path: Path, noisy: np.ndarray) -> Path:
    path = tmp_path / "grey16.tif"
    tifffile.imwrite(path, noisy.astype(np.uint16) * 250)
    return path


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _error_line(err: str) -> str:
    """The user-facing error: exactly one line, no traceback."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    return lines[-1]


def test_denoise_png_default_output_beside_input(grey_png: Path, capsys) -> None:
    before = grey_png.read_bytes()
    assert main(["denoise", str(grey_png), *FAST]) == 0
    out = grey_png.with_name("grey_denoised.png")
    result = iio.imread(out)
    assert result.shape == (H, W) and result.dtype == np.uint8
    assert grey_png.read_bytes() == before  # the input is never touched
    err = capsys.readouterr().err
    assert "100%" in err and "step 10" in err and "loss" in err  # the bar: share, steps, loss
    assert f"wrote {out}" in err


def test_denoise_uint16_tiff_quiet(grey16_tif: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "clean.tif"
    assert main(["denoise", str(grey16_tif), "-o", str(out), "--quiet", *FAST]) == 0
    result = tifffile.imread(out)
    assert result.shape == (H, W) and result.dtype == np.uint16
    assert result.max() > 255  # the intensity range is the input's, not 8-bit
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("mask_name", ["mask.png", "mask.tif", "colour-mask.png"])
def test_inpaint_with_mask_file(grey16_tif: Path, tmp_path: Path, mask_name: str) -> None:
    mask = np.zeros((H, W), np.uint8)
    mask[10:14, 5:40] = 255
    if mask_name.startswith("colour"):  # drawn in an image editor: red strokes on black
        mask = np.stack([mask, mask // 2, np.zeros_like(mask)], axis=-1)
    mask_path = tmp_path / mask_name
    (iio.imwrite if mask_name.endswith(".png") else tifffile.imwrite)(mask_path, mask)
    assert main(["inpaint", str(grey16_tif), "--mask", str(mask_path), "-q", *FAST]) == 0
    result = tifffile.imread(tmp_path / "grey16_inpainted.tif")
    assert result.shape == (H, W) and result.dtype == np.uint16
    # the mask file is the one used: the API's result with the stroke as holes, bit for bit
    holes = np.zeros((H, W), bool)
    holes[10:14, 5:40] = True
    expected = inpaint(tifffile.imread(grey16_tif), holes, steps=10, update_every=5)
    np.testing.assert_array_equal(result, expected)


def test_super_resolve_doubles_the_shape(grey_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "big.png"
    assert main(["super-resolve", str(grey_png), "--factor", "2", "-o", str(out), "-q", *FAST]) == 0
    result = iio.imread(out)
    assert result.shape == (2 * H, 2 * W) and result.dtype == np.uint8


def test_rgb_png_is_restored_in_colour(tmp_path: Path, noisy: np.ndarray) -> None:
    rgb = np.stack([noisy, noisy[::-1], noisy[:, ::-1]], axis=-1)
    path = tmp_path / "colour.png"
    iio.imwrite(path, rgb)
    assert main(["denoise", str(path), "-q", *FAST]) == 0  # channel axis found automatically
    result = iio.imread(tmp_path / "colour_denoised.png")
    assert result.shape == (H, W, 3) and result.dtype == np.uint8


def test_channels_first_tiff_with_channel_axis(tmp_path: Path, noisy: np.ndarray) -> None:
    path = tmp_path / "planes.tif"
    tifffile.imwrite(path, np.stack([noisy, noisy[::-1]]))
    out = tmp_path / "planes_big.tif"
    argv = ["super-resolve", str(path), "--factor", "2", "--channel-axis", "0", "-o", str(out)]
    assert main([*argv, "-q", *FAST]) == 0
    result = tifffile.imread(out)
    assert result.shape == (2, 2 * H, 2 * W) and result.dtype == np.uint8


def test_demo_reports_psnr_and_time(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo.png"
    assert main(["demo", "--steps", "20", "--update-every", "10", "-o", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "PSNR noisy input:" in stdout and "PSNR restored:" in stdout
    assert "time:" in stdout
    assert iio.imread(out).shape == (256, 256)
    assert iio.imread(tmp_path / "demo-noisy.png").dtype == np.uint8


def test_ctrl_c_keeps_the_result_so_far(grey_png: Path, tmp_path: Path, monkeypatch, capsys):
    """A real SIGINT after the first snapshot: the run stops within a step and is saved."""
    from napari_dip.pipeline import run

    real = run.run_jobs
    # A process started in the background (`nohup ... &`) inherits SIGINT ignored, and the CLI
    # rightly leaves an ignored SIGINT alone: start from the interactive default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupted_after_first_snapshot(*args, **kwargs):
        def snapshots():
            for i, snap in enumerate(real(*args, **kwargs)):
                yield snap
                if i == 0:
                    signal.raise_signal(signal.SIGINT)

        return snapshots()

    monkeypatch.setattr(run, "run_jobs", interrupted_after_first_snapshot)
    out = tmp_path / "partial.png"
    try:
        code = main(
            ["denoise", str(grey_png), "-o", str(out), "--steps", "1000", "--update-every", "2"]
        )
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    assert iio.imread(out).shape == (H, W)
    assert "interrupted after 3 steps; wrote the result so far" in capsys.readouterr().err


@pytest.mark.parametrize(("stop", "expected"), [("emv", "emv"), ("none", "none"), (None, "auto")])
def test_stop_option_reaches_the_api_and_is_reported(
    stop, expected, grey_png: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    import napari_dip.files

    real = napari_dip.files.make_request
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(napari_dip.files, "make_request", spy)
    option = [] if stop is None else ["--stop", stop]
    assert main(["denoise", str(grey_png), "-o", str(tmp_path / "o.png"), *option, *FAST]) == 0
    assert seen["stop"] == expected
    assert seen["precision"] == "auto"
    err = capsys.readouterr().err
    assert f"stop rule '{expected}'" in err
    assert "stopped after step 10 (step budget reached); result: the estimate of step 10" in err


def test_a_fused_run_reports_the_weight_sure_chose(grey_png: Path, tmp_path: Path, capsys):
    out = tmp_path / "o.png"
    argv = ["denoise", str(grey_png), "-o", str(out), "--stop", "sure", "--fuse", "nlmeans"]
    assert main([*argv, *FAST]) == 0
    assert iio.imread(out).shape == (H, W)
    err = capsys.readouterr().err
    assert re.search(r"fused with the classical estimate, network's weight [01]\.\d\d", err)


def test_the_estimated_psnr_and_its_range_are_in_the_progress_line_and_the_end(
    tmp_path: Path, capsys
):
    noisy, _ = samples.noisy(sigma=25, size=48, seed=0, image="moon")  # unclipped: estimated
    path = tmp_path / "moon.tif"
    tifffile.imwrite(path, noisy)
    argv = ["denoise", str(path), "-o", str(tmp_path / "o.tif"), "--stop", "validation"]
    assert main([*argv, *FAST]) == 0
    err = capsys.readouterr().err
    shown = r"≈ (\d+\.\d) dB est\. \((\d+\.\d)–(\d+\.\d)\)"
    assert re.search(r"\| .*step \d+ · loss .* · " + shown, err), err  # the bar's line
    end = re.search(r"stopped after step 10 \(.*\); result: .*; estimated PSNR " + shown[2:], err)
    assert end, err
    low, value, high = float(end[2]), float(end[1]), float(end[3])
    assert low < value < high


def test_every_run_option_of_the_table_is_an_option_of_every_command() -> None:
    """One table of options: the CLI takes its flags, choices and help from it."""
    from napari_dip.cli import build_parser
    from napari_dip.options import OPTIONS, STOPS

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name in ("denoise", "inpaint", "super-resolve", "deconvolve", "demo"):
        actions = {a.dest: a for a in commands[name]._actions}
        for option in OPTIONS.values():
            assert option.name in actions, (name, option.name)
            assert actions[option.name].help.startswith(option.help), (name, option.name)
        assert actions["stop"].choices == tuple(c.name for c in STOPS)
        assert "--uncertainty" in commands[name].format_help()  # every help text expands


def _write_stack(path: Path) -> Path:
    tifffile.imwrite(path, np.arange(5 * H * W, dtype=np.uint16).reshape(5, H, W))
    return path


BAD_RUNS = {
    "missing file": (["denoise", "{tmp}/nope.png"], "no such file"),
    "not an image": (["denoise", "{tmp}/notes.png"], "cannot read it as an image"),
    "mask shape": (["inpaint", "{png}", "--mask", "{tmp}/small.png"], "mask shape"),
    "factor 1": (["super-resolve", "{png}", "--factor", "1"], "factor must be an integer >= 2"),
    "unknown preset": (["denoise", "{png}", "--preset", "slow"], "unknown preset 'slow'"),
    "no cuda": (["denoise", "{png}", "--device", "cuda"], "no CUDA GPU"),
    "overwrite input": (["denoise", "{png}", "-o", "{png}"], "is the input file"),
    "3D stack": (["denoise", "{tmp}/stack.tif"], "give --channel-axis"),
    "uint16 to jpeg": (["denoise", "{tmp}/grey16.tif", "-o", "{tmp}/x.jpg"], "JPEG holds 8-bit"),
    "no such folder": (["denoise", "{png}", "-o", "{tmp}/no/x.png"], "does not exist"),
    "bad tv weight": (["denoise", "{png}", "--tv-weight", "-1"], "tv_weight must be"),
    "fuse without sure": (["denoise", "{png}", "--fuse", "nlmeans"], "needs stop='sure'"),
    "float16 on cpu": (
        ["denoise", "{png}", "--device", "cpu", "--precision", "float16"],
        "float16 is for GPUs",
    ),
}


@pytest.mark.parametrize("case", BAD_RUNS, ids=list(BAD_RUNS))
def test_bad_runs_fail_with_one_clear_line(
    case: str, grey_png: Path, grey16_tif: Path, tmp_path: Path, capsys
) -> None:
    if case == "no cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    (tmp_path / "notes.png").write_text("not a picture\n")
    iio.imwrite(tmp_path / "small.png", np.zeros((H // 2, W // 2), np.uint8))
    _write_stack(tmp_path / "stack.tif")
    argv, expected = BAD_RUNS[case]
    argv = [a.format(tmp=tmp_path, png=grey_png) for a in argv]
    before = _files(tmp_path)
    inputs = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}

    assert main([*argv, *FAST]) == 1
    line = _error_line(capsys.readouterr().err)
    assert line.startswith("napari-dip: error: ") and expected in line
    assert _files(tmp_path) == before  # nothing created on error
    assert all(p.read_bytes() == data for p, data in inputs.items())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["super-resolve", "{png}", "--factor", "2.5"], "invalid int value: '2.5'"),
        (["denoise", "{png}", "--steps", "0"], "expected a positive integer"),
        (["inpaint", "{png}"], "required: --mask"),
        (["denoise", "{png}", "--stop", "oracle"], "invalid choice: 'oracle'"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], expected: str, grey_png: Path, capsys) -> None:
    assert main([a.format(png=grey_png) for a in argv]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "error:" in line and expected in line


def test_presets_command_lists_every_preset(capsys) -> None:
    assert main(["presets"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line[:1].strip()]
    assert listed == list(PRESETS)


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("napari-dip")
    run = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "super-resolve" in run.stdout and "demo" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "napari_dip", "denoise", str(tmp_path / "missing.tif")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr.strip() == f"napari-dip: error: {tmp_path / 'missing.tif'}: no such file"


def test_estimate_says_how_long_and_writes_nothing(
    grey_png: Path, tmp_path: Path, noisy: np.ndarray, capsys
) -> None:
    before = _files(tmp_path)
    assert main(["denoise", str(grey_png), "--estimate", "--steps", "40", "--stop", "none"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("estimate: about ") and out.endswith("(40 steps)"), out
    assert _files(tmp_path) == before  # no output file

    stack = tmp_path / "stack.tif"
    tifffile.imwrite(
        stack, np.stack([noisy, noisy[::-1], noisy[:, ::-1]]), photometric="minisblack"
    )
    argv = ["denoise", str(stack), "--axes", "ZYX", "--estimate", "--steps", "40"]
    assert main([*argv, "--tile", "32"]) == 0
    per_slice, total = capsys.readouterr().out.strip().split("\n")
    # 40×56 pixels in 32-pixel tiles overlapping by 4: 2 × 2 tiles per slice
    assert per_slice.startswith("estimate per slice: about ")
    assert per_slice.endswith("(160 steps), over 4 tiles"), per_slice
    assert total.startswith("3 slices × 4 tiles each, in all: ") and "(480 steps)" in total

    assert main([*argv, "--mode", "volume"]) == 1
    assert "cannot estimate a --mode volume run" in _error_line(capsys.readouterr().err)
    assert _files(tmp_path) == before | {"stack.tif"}
