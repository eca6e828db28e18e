"""Big images: tiles blend without seams, agree with untiled runs, read dask lazily, stop well.

Small images (112×112) in 64-pixel tiles with a 16-pixel overlap (2×2 tiles), few steps,
fixed seeds, one torch thread.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from napari_dip import RestorationError, denoise, inpaint, restore_steps, super_resolve
from napari_dip.pipeline.tiles import _ramp, plan_tiles

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE, TILE, OVERLAP = 112, 64, 16
RUN = {"update_every": 1000, "device": "cpu", "stop": "none"}


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    """A noisy, statistically uniform texture (smoothed noise): no place in it differs from
    another, so a higher difference across tile edges than elsewhere can only be a seam
    (a natural image's edges could sit on a tile border by chance)."""
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(size=(SIZE, SIZE)), 3)
    clean = (field - field.min()) / np.ptp(field) * 175 + 40
    return np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)


def _tile_edges(shape: tuple[int, int], tile: int, overlap: int) -> list[int]:
    """Where a tile's contribution starts or ends, inside the image."""
    plan = plan_tiles(shape, tile, overlap)
    return sorted({e for y in plan.ys for e in (y, y + tile) if 0 < e < shape[0]})


def _border_and_rest(image: np.ndarray, edges: list[int]) -> tuple[float, float]:
    """Mean |difference| of neighbouring pixels across tile edges, and everywhere else."""
    out = image.astype(np.float64)
    dx, dy = np.abs(np.diff(out, axis=1)), np.abs(np.diff(out, axis=0))
    cut = [e - 1 for e in edges]  # dx[:, j] compares pixels j and j + 1
    rest = np.ones(dx.shape[1], bool)
    rest[cut] = False
    border = np.concatenate([dx[:, cut].ravel(), dy[cut, :].ravel()])
    other = np.concatenate([dx[:, rest].ravel(), dy[rest, :].ravel()])
    return float(border.mean()), float(other.mean())


# --- the plan and the window -----------------------------------------------------------------


def test_plan_covers_the_image_with_full_tiles_and_weights():
    plan = plan_tiles((300, 130), 96, 16)
    assert plan.ys[0] == 0 and plan.ys[-1] + 96 == 300
    assert all(b - a <= 96 - 16 for a, b in zip(plan.ys, plan.ys[1:], strict=False))
    weight = np.zeros((300, 130))
    for region in plan.tiles():
        assert region[0].stop - region[0].start == 96
        weight[region] += plan.window(region)
    np.testing.assert_allclose(weight, 1.0, atol=1e-5)  # sin² and cos² ramps sum to 1
    ramp = _ramp(64, 16, 16)  # zero on the outer 4 pixels, sums to 1 with the neighbour's
    assert np.all(ramp[:4] == 0) and np.all(ramp[4:60] > 0) and np.allclose(ramp[16:48], 1)
    np.testing.assert_allclose(ramp[:16] + ramp[-16:], 1.0, atol=1e-12)


@pytest.mark.parametrize(
    ("tile", "overlap", "message"),
    [(8, 0, "tile must be"), (64, 32, "tile_overlap"), (64, -1, "tile_overlap"), ("x", 4, "tile")],
)
def test_bad_tile_arguments_are_named(noisy, tile, overlap, message):
    with pytest.raises((ValueError, TypeError), match=message):
        restore_steps(noisy, tile=tile, tile_overlap=overlap, **RUN)


def test_tiling_module_does_not_import_torch():
    code = "import sys, napari_dip.pipeline.tiles; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- restoration through tiles -------------------------------------------------------------


def test_no_seam_across_tile_borders(noisy):
    """Blended tiles: neighbours across tile edges differ no more than elsewhere; the same
    tiles butted together without overlap (the control) show the seam the test looks for."""
    blended = denoise(noisy, tile=TILE, tile_overlap=OVERLAP, steps=30, **RUN)
    border, rest = _border_and_rest(blended, _tile_edges(noisy.shape, TILE, OVERLAP))
    assert border <= 1.15 * rest, (border, rest)  # measured: 0.90 × (3.32 vs 3.69)
    butted = denoise(noisy, tile=SIZE // 2, tile_overlap=0, steps=30, **RUN)
    border0, rest0 = _border_and_rest(butted, [SIZE // 2])
    # measured 2.5× (with the tiles' reflection padding of before, 4.4×): the first can fail
    assert border0 > 1.5 * rest0, (border0, rest0)


def test_tiled_matches_untiled_on_a_smooth_image():
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    blob = 20000 * np.exp(-((yy - 0.4) ** 2 + (xx - 0.6) ** 2) / 0.1)
    smooth = (blob + 5000 * xx + 1000).astype(np.uint16)
    tiled = denoise(smooth, tile=TILE, tile_overlap=OVERLAP, steps=40, **RUN)
    whole = denoise(smooth, tile=None, steps=40, **RUN)
    assert tiled.dtype == np.uint16 and tiled.shape == smooth.shape
    span = float(smooth.max() - smooth.min())
    gap = np.abs(tiled.astype(float) - whole).mean() / span
    assert gap < 0.04, gap
    assert np.abs(tiled.astype(float) - smooth).mean() / span < 0.04


def test_progress_counts_tiles_and_steps(noisy):
    snaps = list(restore_steps(noisy, tile=TILE, tile_overlap=OVERLAP, steps=4, **RUN))
    assert all(s.tiles == 4 and s.parts == 1 for s in snaps)
    assert [s.pieces_done for s in snaps] == [1, 2, 3, 4]
    assert all(s.total_steps == 16 for s in snaps)  # the ceiling, fixed for the whole run
    assert [s.step for s in snaps] == [4, 8, 12, 16] and snaps[-1].total_steps == 16
    assert snaps[-1].stop_reason.startswith("all 4 tiles done")
    assert all(s.stop_reason is None for s in snaps[:-1])
    first = snaps[0].result()
    assert first.shape == noisy.shape and first.dtype == np.uint8
    # not restored yet: the input shows there (a viewer sees the image clear tile by tile)
    np.testing.assert_array_equal(first[-30:, -30:], noisy[-30:, -30:])
    assert np.abs(first[:40, :40].astype(float) - noisy[:40, :40]).mean() > 5  # restored


class _Scripted:
    """An executor that reports scripted snapshots instead of fitting: each piece stops at
    the step ``stops`` gives it (ceiling 100), after one report at step 5."""

    def __init__(self, stops):
        self.stops = iter(stops)

    def run(self, tasks, halt):
        from napari_dip.pipeline.executors import Event
        from napari_dip.pipeline.fitting import PieceSnapshot

        for task in tasks:
            end = next(self.stops)
            for step in (5, end):
                unit = task.unit
                yield Event(
                    task.piece,
                    PieceSnapshot(
                        step=step,
                        total_steps=100,
                        loss=0.0,
                        elapsed=0.0,
                        estimate=unit,
                        average=unit,
                        best=unit,
                        best_step=step,
                        score=None,
                        scores=(),
                        expected_steps=None if step < end else end,
                        stop_reason="stopped by rule" if step == end else None,
                    ),
                )


def test_eta_expects_the_pieces_to_come_to_take_what_the_finished_ones_took():
    from napari_dip.pipeline.plan import make_plan
    from napari_dip.pipeline.request import make_request
    from napari_dip.pipeline.run import run_jobs

    image = np.arange(112 * 112, dtype=np.float32).reshape(112, 112)
    request = make_request(image, tile=TILE, tile_overlap=OVERLAP, steps=100, **RUN)
    snaps = list(run_jobs([make_plan(request)], _Scripted([10, 30, 20, 20])))
    first, after_one = snaps[0], snaps[1]  # tile 1 at step 5 (the rule can't tell yet); done
    assert first.expected_steps is None and first.eta == pytest.approx(first.elapsed / 5 * 395)
    assert after_one.pieces_done == 1 and after_one.expected_steps == 4 * 10  # 3 more like it
    assert after_one.total_steps == 4 * 100  # the ceiling, fixed
    assert after_one.eta == pytest.approx(after_one.elapsed / 10 * 30)
    during = snaps[2]  # tile 2 at step 5: 10 done, it and 2 more expected to take 10 each
    assert during.expected_steps == 10 + 10 + 2 * 10
    assert snaps[-1].expected_steps == snaps[-1].step == 80
    progress = [s.progress for s in snaps]
    assert progress == sorted(progress) and progress[-1] == 1.0  # a bar never goes back


def test_stop_keeps_the_finished_tiles(noisy):
    full = denoise(noisy, tile=TILE, tile_overlap=OVERLAP, steps=6, **RUN)
    snaps = []
    for snap in restore_steps(
        noisy,
        tile=TILE,
        tile_overlap=OVERLAP,
        steps=6,
        should_stop=lambda: bool(snaps) and snaps[-1].pieces_done >= 1,
        **RUN,
    ):
        snaps.append(snap)
    last = snaps[-1]
    assert last.stop_reason == "stopped on request" and last.pieces_done == 1
    out = last.result()
    own = slice(0, SIZE - TILE)  # covered by the first tile only
    np.testing.assert_array_equal(out[own, own], full[own, own])
    np.testing.assert_array_equal(out[TILE:, TILE:], noisy[TILE:, TILE:])  # never started


def test_dask_array_is_read_tile_by_tile(noisy):
    """A dask array whose blocks log every computation: each compute (range pass, tiles)
    covers a fraction of the blocks, never the whole array; the result is the numpy one."""
    import dask.array as da
    from dask.callbacks import Callback

    computes: list[list[tuple]] = []

    class Log(Callback):
        def _start(self, dsk):
            computes.append([])

    def block(block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        computes[-1].append((r0, c0))
        return noisy[r0:r1, c0:c1]

    lazy = da.map_blocks(block, chunks=((16,) * 7, (16,) * 7), dtype=noisy.dtype)
    with Log():
        snaps = list(restore_steps(lazy, tile=TILE, tile_overlap=OVERLAP, steps=3, **RUN))
    blocks = 7 * 7
    assert computes and max(len(c) for c in computes) <= 5 * 5 < blocks
    assert len({b for c in computes for b in c}) == blocks  # every part was read at some time
    numpy_run = denoise(noisy, tile=TILE, tile_overlap=OVERLAP, steps=3, **RUN)
    np.testing.assert_array_equal(snaps[-1].result(), numpy_run)
    # the input shows where a tile has been read, not yet elsewhere: nothing read ahead
    first = snaps[0].result()
    assert np.all(first[-30:, -30:] == noisy.min())


def test_small_dask_array_is_restored_whole(noisy):
    import dask.array as da

    out = denoise(da.from_array(noisy[:64, :64], chunks=32), steps=2, **RUN)
    assert isinstance(out, np.ndarray) and out.shape == (64, 64)


def test_super_resolution_and_inpainting_through_tiles(noisy):
    from napari_dip.samples import degrade_resolution

    up = super_resolve(noisy, 2, tile=TILE, tile_overlap=OVERLAP, steps=40, **RUN)
    assert up.shape == (2 * SIZE, 2 * SIZE) and up.dtype == np.uint8
    back = degrade_resolution(up.astype(np.float32), 2)  # every tile fits the input it saw
    for rows, cols in plan_tiles(noisy.shape, TILE, OVERLAP).tiles():
        r = np.corrcoef(back[rows, cols].ravel(), noisy[rows, cols].ravel())[0, 1]
        assert r > 0.5, (rows, cols, r)  # measured 0.68-0.7; a tile never fitted: nan
    rgb = np.stack([noisy, noisy[::-1], noisy.T], axis=-1)
    missing = np.zeros(noisy.shape, bool)
    missing[50:60, 50:60] = True
    tiled = {"channel_axis": -1, "tile": TILE, "tile_overlap": OVERLAP, "steps": 3, **RUN}
    filled = inpaint(rgb, missing, **tiled)
    assert filled.shape == rgb.shape and filled.dtype == np.uint8
    # every tile takes its part of the mask: what the holes hold is ignored, bit for bit
    other = rgb.copy()
    other[missing] = 255 - other[missing]
    np.testing.assert_array_equal(inpaint(other, missing, **tiled), filled)
    hole = np.zeros(noisy.shape, bool)
    hole[:, :] = True
    hole[:TILE, :TILE] = False
    with pytest.raises(ValueError, match="no known pixels"):
        inpaint(noisy, hole, tile=TILE // 2, tile_overlap=4, steps=2, **RUN)


def test_cli_tile_option(tmp_path, noisy, monkeypatch):
    import tifffile

    from napari_dip.cli import main

    source, out = tmp_path / "big.tif", tmp_path / "out.tif"
    tifffile.imwrite(source, noisy.astype(np.uint16) * 100)
    args = ["denoise", str(source), "-o", str(out), "--steps", "2", "--stop", "none", "-q"]
    from napari_dip.pipeline import run

    asked: list[object] = []
    executor = run.InProcess
    monkeypatch.setattr(run, "InProcess", lambda w, t: asked.append((w, t)) or executor(w, t))
    tiles = ["--tile", "64", "--tile-overlap", "16", "--workers", "2"]
    assert main([*args, *tiles, "--device", "cpu"]) == 0
    assert asked == [(2, 1)]  # the option reaches the run: two pieces at once, a thread each
    result = tifffile.imread(out)
    assert result.shape == noisy.shape and result.dtype == np.uint16
    assert main([*args, "--tile", "8", "--device", "cpu"]) == 1  # a clear error, no file
    assert main([*args, "--workers", "0"]) == 2  # a usage error


@pytest.mark.parametrize(
    ("shape", "preset", "factor", "denoise", "side"),
    [
        ((1024, 1024), "fast", 1, False, None),  # 1 megapixel: restored whole
        ((1100, 1000), "fast", 1, False, 512),
        ((600, 600), "fast", 1, False, None),
        ((600, 600), "paper", 1, False, 256),  # a heavy network tiles sooner, in smaller tiles
        # super-resolution: light tiles of 144 output pixels, cut from the low-resolution input
        ((300, 300), "fast", 4, False, 36),
        ((64, 64), "fast", 4, False, 36),  # ×4 to 256²: 2 × 2 tiles
        ((32, 32), "fast", 4, False, None),  # under two tiles' worth: whole
        ((128, 128), "fast", 2, False, 72),
        ((300, 300), "paper", 4, False, 64),  # heavy: 256-px tiles of the output
        # denoising with a light preset on a CPU: small tiles above 2 tiles' worth, for speed
        ((200, 200), "fast", 1, True, None),
        ((256, 256), "fast", 1, True, 144),
        ((300, 260), "fast", 1, True, 144),
        ((512, 512), "fast", 1, True, 144),
        ((600, 600), "paper", 1, True, 256),  # heavy presets: unchanged
    ],
)
def test_auto_tiles_follow_the_preset_cost(shape, preset, factor, denoise, side):
    from napari_dip.pipeline.plan import make_plan
    from napari_dip.pipeline.request import make_request

    image = np.zeros(shape, np.uint8)
    block = np.zeros(shape, bool)
    block[:32, :32] = True  # a wide hole: inpainting keeps the full network's tiles
    task = {"task": "denoise"} if denoise else {"task": "inpaint", "mask": block}
    if factor > 1:
        task = {"task": "super_resolve", "factor": factor}
    tiles = make_plan(make_request(image, preset=preset, device="cpu", **task)).tiles
    assert (tiles and tiles.tile) == side
    if tiles is not None:
        assert tiles.overlap == side // 8 and tiles.factor == factor


def test_a_512_denoise_is_tiled_and_the_others_are_not(monkeypatch):
    """restore_steps passes the task on: a 512² denoise runs in 144-px tiles (4 × 4 with at
    least 18 px of overlap, spread evenly) with the 3-scale, zero-padded tile network, an
    inpainting of the same image with a 16-px hole whole with all 5 scales and reflection."""
    from napari_dip import engine

    built: list[tuple[int, str]] = []  # the scales and padding of every network a fit builds
    build = engine.build_prior

    def spy(preset, *a, **k):
        built.append((preset.network.scales, preset.network.padding))
        return build(preset, *a, **k)

    monkeypatch.setattr(engine, "build_prior", spy)
    image = np.zeros((512, 512), np.uint8)
    image[::7] = 200
    snap = next(restore_steps(image, steps=1, update_every=1, device="cpu", workers=1))
    assert snap.tiles == 16
    assert built == [(3, "zeros")]
    mask = np.zeros_like(image)
    mask[100:116, 100:116] = 1  # 8 px from the nearest known pixel: too wide for the tiles
    snap = next(restore_steps(image, task="inpaint", mask=mask, steps=1, device="cpu"))
    assert snap.tiles == 1
    assert built == [(3, "zeros"), (5, "reflect")]


def test_range_of_a_dask_array_is_the_numpy_one(noisy):
    import dask.array as da

    from napari_dip.pipeline.tiles import global_range

    lazy = da.from_array(noisy, chunks=16)
    assert global_range(lazy, None) == (noisy.min(), noisy.max())
    percentiles = global_range(lazy, None, None, (1, 99))
    np.testing.assert_allclose(percentiles, np.percentile(noisy, (1, 99)))
    bad = noisy.astype(np.float32)
    bad[70, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        global_range(da.from_array(bad, chunks=16), None)


def _tile_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name.startswith("napari-dip piece")]


def _threads_a_new_thread_gets() -> int:
    """torch's thread count as a thread started now takes it up (not this thread's own)."""
    import threading

    import torch

    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_tiles_side_by_side_give_the_one_after_the_other_result(noisy):
    """Two tiles fitted at once (one torch thread each, as here) blend to exactly what one
    after the other gives: tiles are blended in plan order, whichever finishes first."""
    alone = denoise(noisy, tile=TILE, tile_overlap=OVERLAP, steps=6, workers=1, **RUN)
    run = {**RUN, "update_every": 2}
    snaps = list(restore_steps(noisy, tile=TILE, tile_overlap=OVERLAP, steps=6, workers=2, **run))
    np.testing.assert_array_equal(snaps[-1].result(), alone)
    assert max(s.pieces_running for s in snaps) == 2  # two tiles reported while both ran
    assert snaps[-1].step == 4 * 6 and snaps[-1].stop_reason.startswith("all 4 tiles done")
    assert [s.step for s in snaps] == sorted(s.step for s in snaps)  # steps of all tiles
    assert not _tile_threads()


def test_auto_tile_workers_share_the_threads_and_give_them_back(noisy, monkeypatch):
    import threading

    import torch

    from napari_dip.pipeline import fitting

    torch.set_num_threads(2)  # the fixture puts 1 back afterwards
    tiles_had: list[int] = []  # each tile's thread's count, as its fit starts
    use = fitting.use_threads

    def spy(count: int) -> None:
        use(count)
        tiles_had.append(torch.get_num_threads())

    monkeypatch.setattr(fitting, "use_threads", spy)
    seen: list[tuple[int, int, int]] = []
    for snap in restore_steps(noisy, tile=TILE, tile_overlap=OVERLAP, steps=4, **RUN):
        seen.append((snap.pieces_running, torch.get_num_threads(), _threads_a_new_thread_gets()))
    assert tiles_had == [1, 1, 1, 1]  # two tiles at once, one thread each
    # this thread untouched, and the default for new threads never changes, even meanwhile
    assert all(mine == 2 and new == 2 for _, mine, new in seen)
    assert torch.get_num_threads() == 2 and _threads_a_new_thread_gets() == 2
    assert threading.current_thread() is threading.main_thread()
    list(restore_steps(noisy, tile=TILE, workers=1, steps=1, **RUN))
    assert tiles_had == [1, 1, 1, 1]  # one tile at a time: the threads are left alone
    with pytest.raises(ValueError, match="workers"):
        restore_steps(noisy, tile=TILE, workers=0, **RUN)


def test_side_by_side_stop_and_close_end_every_tile(noisy):
    kw = {"tile": TILE, "tile_overlap": OVERLAP, "workers": 2, **RUN, "update_every": 1}
    snaps = []
    for snap in restore_steps(
        noisy, steps=6, should_stop=lambda: bool(snaps) and snaps[-1].pieces_done >= 1, **kw
    ):
        snaps.append(snap)
    last = snaps[-1]
    assert last.stop_reason == "stopped on request" and last.pieces_done in (1, 2)
    np.testing.assert_array_equal(last.result()[TILE:, TILE:], noisy[TILE:, TILE:])  # not run
    assert np.abs(last.result()[:40, :40].astype(float) - noisy[:40, :40]).mean() > 5
    assert not _tile_threads()
    run = restore_steps(noisy, steps=100_000, **kw)  # closed after a few snapshots
    for _, snap in zip(range(5), run, strict=False):
        assert snap.stop_reason is None
    run.close()  # returns once the running tiles have stopped
    assert not _tile_threads()


def test_tiles_run_at_once_and_a_failing_tile_is_reported(noisy, monkeypatch):
    """Fake fits: the first two only get past a two-party barrier if they run at the same
    time; the third raises. The others are kept, the failure is reported, never skipped."""
    import threading

    from napari_dip.pipeline import executors

    barrier = threading.Barrier(2, timeout=20)
    real = executors.fit_piece

    def fit_piece(task, should_stop):
        if task.piece.tile < 2:
            barrier.wait()
        elif task.piece.tile == 2:
            raise RuntimeError("tile 3 broke")
        yield from real(task, should_stop)

    monkeypatch.setattr(executors, "fit_piece", fit_piece)
    kw = {"tile": TILE, "tile_overlap": OVERLAP, "workers": 2, "steps": 2, **RUN}
    snaps = list(restore_steps(noisy, **kw))
    last = snaps[-1]
    assert last.failures == ("tile 3: RuntimeError: tile 3 broke",)
    assert "1 failed" in last.stop_reason and last.pieces_done == 4
    with pytest.raises(RestorationError, match="tile 3 broke") as caught:
        denoise(noisy, **kw)
    partial = caught.value.result  # the tiles that ran are kept; the input where tile 3 lay
    assert partial.shape == noisy.shape and partial.dtype == noisy.dtype
    np.testing.assert_array_equal(partial[-20:, :20], noisy[-20:, :20])
    assert np.abs(partial[:30, :30].astype(float) - noisy[:30, :30]).mean() > 3
    assert not _tile_threads()


@pytest.mark.parametrize(
    ("preset", "task", "tile", "scales"),
    [
        ("fast", "denoise", 144, 3),  # the default tile: coarsest scale 18 px, not 9
        ("fast", "denoise", 128, 3),
        ("fast", "denoise", 64, 2),
        ("fast", "denoise", 512, 5),
        ("fast", "inpaint", 128, 5),  # holes need the network's reach
        ("paper", "denoise", 128, 5),  # heavy: as published
        ("fast-gaussian", "denoise", 128, 3),
    ],
)
def test_small_denoising_tiles_drop_the_coarsest_scales(preset, task, tile, scales):
    from napari_dip.engine import get_preset
    from napari_dip.pipeline.plan import tile_preset

    chosen = get_preset(preset)
    net = tile_preset(chosen, plan_tiles((600, 600), tile, tile // 8), task == "denoise").network
    assert net.scales == scales
    # light denoising tiles pad with zeros (cheaper); the rest keep the paper's reflection
    assert net.padding == ("zeros" if task == "denoise" and preset != "paper" else "reflect")
    assert net.down == chosen.network.down[:scales] and net.skip == chosen.network.skip[:scales]
    if chosen.network.upsample_sigma:  # listed coarsest first: the finest scales' σ stay
        assert net.upsample_sigma == chosen.network.upsample_sigma[-scales:]


@pytest.mark.parametrize(
    ("kind", "light"),
    [("random", True), ("dense", True), ("blocks", False), ("stack", False)],
)
def test_inpainting_gets_the_light_tiles_only_while_its_holes_are_small(kind, light):
    from scipy import ndimage

    from napari_dip.pipeline.plan import LIGHT_HOLE_REACH, hole_reach, make_plan
    from napari_dip.pipeline.request import make_request

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (288, 288)).astype(np.uint8)
    mask = rng.random(image.shape) < {"dense": 0.8}.get(kind, 0.5)
    if kind == "blocks":  # 50 % random plus one 16-px block: the block decides
        mask[100:116, 100:116] = True
    axes = None
    if kind == "stack":  # a mask of the stack's shape is not measured: the full network
        image, mask, axes = np.stack([image, image]), np.stack([mask, mask]), "ZYX"
    request = make_request(image, task="inpaint", mask=mask, axes=axes, device="cpu")
    if kind != "stack":
        assert hole_reach(request) == pytest.approx(ndimage.distance_transform_edt(mask).max())
    assert (hole_reach(request) <= LIGHT_HOLE_REACH) is light
    plan = make_plan(request)
    if light:  # 288² > two 144-px tiles' worth: cut, and fitted with the 3-scale network
        assert plan.tiles is not None and plan.tiles.tile == 144
        assert plan.preset.network.scales == 3
    else:  # whole (at most four 512-px tiles' worth), with the preset's full network
        assert plan.tiles is None and plan.preset.network.scales == 5


@pytest.mark.parametrize(("factor", "side"), [(2, 72), (4, 36), (5, 28)])
def test_super_resolution_tiles_get_the_light_network_and_fit(factor, side, monkeypatch):
    """×factor of a small image: tiles of 144 / factor input pixels, the 3-scale zero-padded
    tile network (a 140-px output tile, not a multiple of its 8, too), four such fits in the
    run, and every tile fits the input it saw; the heavy preset keeps its own network."""
    from skimage import data

    from napari_dip import engine
    from napari_dip.pipeline.plan import make_plan
    from napari_dip.pipeline.request import make_request
    from napari_dip.samples import degrade_resolution

    n = 2 * side - side // 8 - 1  # two tiles' overlap-spaced starts, more than 2 tiles' area
    low = np.ascontiguousarray(data.camera()[::2, ::2][:n, :n])
    plan = make_plan(make_request(low, task="super_resolve", factor=factor, device="cpu"))
    assert plan.tiles is not None and len(plan.tiles) == 4
    assert (plan.tiles.tile, plan.tiles.factor) == (side, factor)
    assert (plan.preset.network.scales, plan.preset.network.padding) == (3, "zeros")
    heavy = make_request(low, task="super_resolve", factor=factor, device="cpu", preset="paper")
    assert make_plan(heavy).preset.network.scales == 5
    built: list[tuple[int, str]] = []  # the scales and padding of every network the run builds
    build = engine.build_prior

    def spy(preset, *a, **k):
        built.append((preset.network.scales, preset.network.padding))
        return build(preset, *a, **k)

    monkeypatch.setattr(engine, "build_prior", spy)
    up = super_resolve(low, factor, steps=60, **RUN)
    assert built == [(3, "zeros")] * 4
    assert up.shape == (factor * low.shape[0], factor * low.shape[1]) and up.dtype == np.uint8
    back = degrade_resolution(up.astype(np.float32), factor)
    for rows, cols in plan.tiles.tiles():
        r = np.corrcoef(back[rows, cols].ravel(), low[rows, cols].ravel())[0, 1]
        assert r > 0.5, (rows, cols, r)


def test_a_512_denoise_estimate_times_the_tiles_network_side_by_side(monkeypatch):
    import threading

    import torch

    from napari_dip import engine, estimate_time

    torch.set_num_threads(2)  # the fixture puts 1 back afterwards
    fits: list[tuple[int, int, bool]] = []  # (scales, torch threads, on the main thread)
    fit = engine.fit

    def spy(problem, prior, *a, **k):
        on_main = threading.current_thread() is threading.main_thread()
        fits.append((prior.net.config.scales, torch.get_num_threads(), on_main))
        return fit(problem, prior, *a, **k)

    monkeypatch.setattr(engine, "fit", spy)
    est = estimate_time((512, 512), steps=10, stop="none", timed_steps=1, device="cpu")
    assert est.tiles == 16 and est.max_steps == 160 and est.seconds_per_step > 0
    assert fits == [(3, 1, False)] * 4  # warm-up and timing: two 3-scale tiles at once, 1 thread
    assert torch.get_num_threads() == 2 and _threads_a_new_thread_gets() == 2
