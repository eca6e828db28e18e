"""The pipeline's shape and the defects the redesign removed, each with a test that failed
before its fix: live stack buffers, reseeded device generators, the process-wide torch thread
count, the environment changed on import, and failed slices counted as done."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import napari_dip
from napari_dip import restore_steps, samples

SRC = Path(napari_dip.__file__).parent
RUN = {"device": "cpu", "stop": "none"}


def _imports(path: Path) -> set[str]:
    """The napari_dip modules ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package += ".__init__"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: -node.level]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            names = [name] + [f"{name}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("napari_dip")}
    return found


def test_no_import_circles_and_small_modules():
    modules = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            # a package's __init__ importing its own submodules lazily is not a circle
            if state.get(nxt) == 1 and not node.startswith(nxt + "."):
                pytest.fail("import circle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
    long = {n: len(p.read_text().splitlines()) for n, p in modules.items()}
    assert {n: k for n, k in long.items() if k > 450} == {}


def test_one_snapshot_type_for_images_tiles_and_stacks():
    noisy, _ = samples.noisy(sigma=25, size=40)
    stack = np.stack([noisy, noisy[::-1]])
    kinds = {
        type(s)
        for run in (
            restore_steps(noisy, steps=2, update_every=1, **RUN),
            restore_steps(noisy, steps=2, update_every=1, tile=24, **RUN),
            restore_steps(stack, axes="ZYX", steps=2, update_every=1, **RUN),
        )
        for s in run
    }
    assert kinds == {napari_dip.Snapshot}


def test_early_snapshots_of_a_stack_show_what_was_restored_then():
    """Each snapshot keeps the stack as it was: before, every snapshot shared one buffer the
    run kept writing, so the first ones showed the finished stack."""
    stack, _ = samples.photon_limited((3, 32, 32), photons=20, seed=0)
    snaps, seen = [], []
    for snap in restore_steps(stack, axes="ZYX", steps=4, update_every=2, **RUN):
        snaps.append(snap)
        seen.append((snap.result(), snap.best.copy()))
    first, last = snaps[0].result(), snaps[-1].result()
    np.testing.assert_array_equal(first[1:], stack[1:])  # not restored yet: the input
    assert not np.array_equal(last[1:], stack[1:])
    for snap, (result, best) in zip(snaps, seen, strict=True):  # looked at after the run,
        np.testing.assert_array_equal(snap.result(), result)  # each is what it was then
        np.testing.assert_array_equal(snap.best, best)


def test_building_a_prior_leaves_other_devices_generators_alone(monkeypatch):
    """build_prior seeded every device's generator (torch.manual_seed) while saving and
    restoring the CPU's only: a CUDA or MPS caller's random stream was reset."""
    import torch

    from napari_dip import engine

    seeded: list[int] = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    monkeypatch.setattr(torch.mps, "manual_seed", seeded.append, raising=False)
    before = torch.random.get_rng_state()
    engine.build_prior(
        engine.get_preset("fast"), (32, 32), 1, perturb_std=0.0, seed=7, device=torch.device("cpu")
    )
    assert seeded == []
    assert torch.equal(torch.random.get_rng_state(), before)


def _threads_a_new_thread_gets() -> int:
    import torch

    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_two_runs_at_once_leave_the_default_thread_count_alone(one_torch_thread):
    """Two runs fitting tiles side by side, each on its own thread (two docks): the torch
    thread count new threads get stays what it was, during the runs and after (before, each
    run set it to its share and put back what it had read, racing with the other)."""
    import torch

    torch.set_num_threads(2)
    noisy, _ = samples.noisy(sigma=25, size=64)
    seen: list[int] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            seen.append(_threads_a_new_thread_gets())

    def run() -> None:
        list(restore_steps(noisy, tile=32, tile_overlap=4, workers=2, steps=3, **RUN))

    runs = [threading.Thread(target=run) for _ in range(2)]
    watcher = threading.Thread(target=probe)
    watcher.start()
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    done.set()
    watcher.join()
    assert seen and set(seen) == {2}
    assert _threads_a_new_thread_gets() == 2 and torch.get_num_threads() == 2


def test_importing_napari_dip_leaves_the_environment_alone():
    """``import napari_dip`` set OMP_WAIT_POLICY for the whole process (and every OpenMP
    library loaded later in napari); only the CLI, which owns its process, sets it now."""
    code = (
        "import os, napari_dip, napari_dip.restore; "
        "assert 'OMP_WAIT_POLICY' not in os.environ, os.environ['OMP_WAIT_POLICY']"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    cli = (
        "import os; from napari_dip.cli import main; main(['presets']); "
        "print(os.environ.get('OMP_WAIT_POLICY'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", cli], check=True, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE"
    mine = subprocess.run(
        [sys.executable, "-c", cli],
        check=True,
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True,
        text=True,
    )
    assert mine.stdout.strip().splitlines()[-1] == "ACTIVE"  # the user's value wins


def test_a_slice_that_fails_is_reported_not_counted_as_done(tmp_path):
    """A later slice that cannot be restored (here: its mask hides every pixel) was recorded
    as 'not restored' and the CLI exited 0; now it is a failure the run and the CLI report,
    while the other slices are restored."""
    import tifffile

    from napari_dip.cli import main

    stack, _ = samples.photon_limited((3, 32, 32), photons=20, seed=0)
    mask = np.zeros(stack.shape, np.uint8)
    mask[2] = 1
    snaps = list(restore_steps(stack, task="inpaint", mask=mask, axes="ZYX", steps=3, **RUN))
    last = snaps[-1]
    assert len(last.failures) == 1 and last.failures[0].startswith("slice 2: ValueError")
    assert "1 failed" in last.stop_reason
    with pytest.raises(napari_dip.RestorationError, match="every pixel as missing") as caught:
        napari_dip.inpaint(stack, mask, axes="ZYX", steps=3, **RUN)
    partial = caught.value.result
    np.testing.assert_array_equal(partial[2], stack[2])  # kept as it was
    assert not np.array_equal(partial[0], stack[0])  # restored
    tifffile.imwrite(tmp_path / "s.tif", stack, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "m.tif", mask)
    argv = ["inpaint", str(tmp_path / "s.tif"), "--mask", str(tmp_path / "m.tif")]
    assert main([*argv, "--steps", "3", "--stop", "none", "-q", "-o", str(tmp_path / "o.tif")]) == 1
    assert tifffile.imread(tmp_path / "o.tif").shape == stack.shape  # the rest is kept


def test_bad_data_in_the_first_part_raises_at_once():
    """A request whose only image cannot be restored raises the plain error, as before."""
    with pytest.raises(ValueError, match="constant"):
        napari_dip.denoise(np.full((16, 16), 3.0), steps=2, **RUN)
    with pytest.raises(ValueError, match="every slice of the image is constant"):
        napari_dip.denoise(np.zeros((2, 16, 16)), axes="ZYX", steps=2, **RUN)


def test_a_piece_out_of_memory_is_retried_in_smaller_tiles(monkeypatch):
    """An out-of-memory error (injected for pieces over 40 px) makes the run go again in
    tiles half the size, and say so; the result is restored, not the input."""
    import torch

    from napari_dip.pipeline import executors

    real = executors.fit_piece
    sides: list[int] = []

    def tight(task, should_stop):
        sides.append(task.unit.shape[-1])
        if task.unit.shape[-1] > 40:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        yield from real(task, should_stop)

    monkeypatch.setattr(executors, "fit_piece", tight)
    noisy, _ = samples.noisy(sigma=25, size=64)
    with pytest.warns(RuntimeWarning, match="retried in tiles of 32 px"):
        snaps = list(restore_steps(noisy, tile=None, steps=3, **RUN))
    last = snaps[-1]
    assert sides[0] == 64 and set(sides[1:]) == {32}
    assert last.notes == ("out of memory: retried in tiles of 32 px",) and not last.failures
    assert last.tiles > 1 and not np.array_equal(last.result(), noisy)


def test_out_of_memory_on_a_gpu_with_nothing_smaller_to_tile_goes_on_the_cpu(monkeypatch):
    """A GPU (faked: this machine has none) that runs out of memory on a piece too small to
    tile again: the run goes again on the CPU, says so, and restores the image."""
    import torch

    from napari_dip.pipeline import executors

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    real = executors.fit_piece
    devices: list[str] = []

    def no_room_on_the_gpu(task, should_stop):
        devices.append(task.device.type)
        if task.device.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        yield from real(task, should_stop)

    monkeypatch.setattr(executors, "fit_piece", no_room_on_the_gpu)
    noisy, _ = samples.noisy(sigma=25, size=48)  # half of it is under the 32-px tile floor
    with pytest.warns(RuntimeWarning, match="retried on the CPU"):
        snaps = list(restore_steps(noisy, tile=None, steps=3, **(RUN | {"device": "cuda"})))
    assert devices == ["cuda", "cpu"]
    assert snaps[-1].notes == ("out of memory on cuda: retried on the CPU",)
    assert not snaps[-1].failures and not np.array_equal(snaps[-1].result(), noisy)
