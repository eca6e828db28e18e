"""``napari-dip batch``: folders of files in this process or on a real Dask ``LocalCluster``,
written as each file finishes, resumable, a bad file reported while the rest go on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_dip import samples
from napari_dip.cli import main

FAST = ["--steps", "6", "--stop", "none", "--update-every", "3", "-q", "--device", "cpu"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Six small images of three kinds: grey PNG, a uint16 TIFF, a 2-slice ZYX stack."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for k in range(3):
        iio.imwrite(inputs / f"grey{k}.png", samples.noisy(sigma=25, size=32, seed=k)[0])
    tifffile.imwrite(inputs / "u16.tif", samples.noisy(sigma=25, size=32)[0].astype(np.uint16) * 9)
    stack, _ = samples.photon_limited((2, 32, 32), photons=20, seed=3)
    tifffile.imwrite(inputs / "stack.tif", stack, metadata={"axes": "ZYX"})
    tifffile.imwrite(inputs / "stack2.tif", stack[::-1], metadata={"axes": "ZYX"})
    return inputs


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".png":
            out[path.name] = iio.imread(path)
        elif path.suffix == ".tif":
            out[path.name] = tifffile.imread(path)
    return out


def _log(folder: Path) -> list[dict]:
    return [
        json.loads(line) for line in (folder / "napari-dip-batch.jsonl").read_text().splitlines()
    ]


def test_batch_in_process_writes_logs_and_resumes(folder: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main(["batch", "denoise", str(folder), "-o", str(out), "--workers", "2", *FAST]) == 0
    results = _outputs(out)
    assert sorted(results) == [
        "grey0_denoised.png",
        "grey1_denoised.png",
        "grey2_denoised.png",
        "stack2_denoised.tif",
        "stack_denoised.tif",
        "u16_denoised.tif",
    ]
    assert results["stack_denoised.tif"].shape == (2, 32, 32)
    assert results["u16_denoised.tif"].dtype == np.uint16
    original = iio.imread(folder / "grey0.png").astype(float)
    assert np.abs(results["grey0_denoised.png"] - original).mean() > 3  # restored, not copied
    log = _log(out)
    done = [e for e in log if e["event"] == "done"]
    pieces = [e for e in log if e["event"] == "piece"]
    assert len(done) == 6 and len(pieces) == 3 + 1 + 2 + 2  # a stack's slices are pieces
    assert all(e["steps"] == 6 and e["stop_reason"] == "step budget reached" for e in pieces)
    # a rerun skips what is done; a new file is restored
    iio.imwrite(folder / "late.png", samples.noisy(sigma=25, size=32, seed=9)[0])
    before = {p: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix != ".jsonl"}
    assert main(["batch", "denoise", str(folder), "-o", str(out), *FAST]) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    events = [e["event"] for e in _log(out)[len(log) :]]
    assert events.count("skipped") == 6 and events.count("done") == 1


def test_a_corrupt_file_is_reported_and_the_rest_written(folder: Path, tmp_path: Path, capsys):
    (folder / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 20)  # a TIFF cut short
    (folder / "flat.png").write_bytes(
        iio.imwrite("<bytes>", np.zeros((8, 8), np.uint8), extension=".png")
    )
    out = tmp_path / "out"
    assert main(["batch", "denoise", str(folder), "-o", str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert "broken.tif: cannot read it as an TIFF file" in err or "broken.tif" in err
    assert "flat.png" in err and "constant" in err
    assert len(_outputs(out)) == 6  # the good ones
    failed = {Path(e["file"]).name for e in _log(out) if e["event"] == "failed"}
    assert failed == {"broken.tif", "flat.png"}


def test_batch_on_a_local_cluster_matches_the_in_process_run(folder: Path, tmp_path: Path):
    """Two worker processes of a real LocalCluster, one torch thread each: the same outputs,
    bit for bit, as two pieces at a time on one thread each in this process (without warm
    starts: on a cluster a stack's slices run at once, each from scratch)."""
    here, there = tmp_path / "here", tmp_path / "there"
    cold = ["--workers", "2", "--no-warm-start"]
    assert main(["batch", "denoise", str(folder), "-o", str(here), *cold, *FAST]) == 0
    assert (
        main(["batch", "denoise", str(folder), "-o", str(there), "--cluster", "local:2", *FAST])
        == 0
    )
    a, b = _outputs(here), _outputs(there)
    assert sorted(a) == sorted(b) and len(a) == 6
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_killed_worker_is_survived(folder: Path, tmp_path: Path):
    """A worker process killed while it fits: the scheduler reruns its piece elsewhere and
    every file is written, identical to an undisturbed run."""
    from distributed import Client, LocalCluster

    from napari_dip.batch import run_batch
    from napari_dip.files import find_inputs
    from napari_dip.pipeline.cluster import DaskExecutor
    from napari_dip.pipeline.executors import InProcess

    inputs = find_inputs([folder])
    options = {"steps": 30, "stop": "none", "update_every": 10, "device": "cpu"}
    options["warm_start"] = False  # as on the cluster, where a stack's slices run at once
    calm = run_batch(inputs, tmp_path / "calm", executor=InProcess(2, 1), options=options)
    assert [o.status for o in calm] == ["done"] * 6
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            killed: list[int] = []

            def kill_one(snap, number, total):
                if not killed:  # the first file is back: kill a worker, with pieces on it
                    pid = next(iter(client.run(os.getpid).values()))
                    os.kill(pid, 9)
                    killed.append(pid)

            outcomes = run_batch(
                inputs,
                tmp_path / "stormy",
                executor=DaskExecutor(client),
                progress=kill_one,
                options=options,
            )
    assert killed and [o.status for o in outcomes] == ["done"] * 6
    a, b = _outputs(tmp_path / "calm"), _outputs(tmp_path / "stormy")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_piece_that_raises_on_the_cluster_is_retried_then_reported(monkeypatch, tmp_path):
    """An in-process cluster (so the failure can be injected): a piece that fails once is
    retried and succeeds; one that always fails is reported for its file, not skipped."""
    from distributed import Client, LocalCluster

    from napari_dip.pipeline import cluster
    from napari_dip.pipeline.plan import make_plan
    from napari_dip.pipeline.request import make_request
    from napari_dip.pipeline.run import run_jobs

    tries = tmp_path / "tries"  # tasks are serialised, even in-process: count in a file
    real = cluster.fit_piece_to_end

    def flaky(task):
        with tries.open("a") as f:
            f.write(f"{task.piece.part}\n")
        first = tries.read_text().split().count(str(task.piece.part)) == 1
        if task.piece.part == 1 or (task.piece.part == 0 and first):
            raise RuntimeError(f"part {task.piece.part} broke")
        return real(task)

    monkeypatch.setattr(cluster, "fit_piece_to_end", flaky)
    stack, _ = samples.photon_limited((2, 32, 32), photons=20, seed=0)
    plan = make_plan(make_request(stack, axes="ZYX", steps=3, stop="none", device="cpu"))
    with LocalCluster(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
    ) as c:
        with Client(c) as client:
            snaps = list(run_jobs([plan], cluster.DaskExecutor(client, retries=1), fail_fast=False))
    last = snaps[-1]
    assert sorted(tries.read_text().split()) == ["0", "0", "1", "1"]  # each tried twice
    assert last.failures == ("slice 1: RuntimeError: part 1 broke",)
    result = last.result()
    assert not np.array_equal(result[0], stack[0]) and np.array_equal(result[1], stack[1])


def test_omezarr_input_is_read_lazily(tmp_path: Path):
    import zarr

    stack, _ = samples.photon_limited((2, 32, 32), photons=20, seed=0)
    store = tmp_path / "cells.ome.zarr"
    root = zarr.open_group(str(store), mode="w", zarr_format=2)
    root.create_array("0", data=stack, chunks=(1, 32, 32))
    axes = [
        {"name": "z", "type": "space"},
        {"name": "y", "type": "space"},
        {"name": "x", "type": "space"},
    ]
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0"}]}]
    out = tmp_path / "out"
    assert main(["batch", "denoise", str(store), "-o", str(out), "--workers", "1", *FAST]) == 0
    result = tifffile.imread(out / "cells_denoised.tif")
    assert result.shape == stack.shape and result.dtype == stack.dtype
    assert main(["denoise", str(store), "-o", str(tmp_path / "one.tif"), *FAST]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "one.tif"), result)
