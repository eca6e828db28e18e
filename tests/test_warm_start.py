"""Warm starts: each part of a stack starts from the prior its neighbour was fitted to."""

import threading

import numpy as np
import pytest

import napari_dip
from napari_dip import restore_steps, samples
from napari_dip.pipeline import fitting
from test_faults import fail_piece


def psnr(clean: np.ndarray, restored: np.ndarray) -> float:
    mse = np.mean((clean.astype(np.float64) - restored.astype(np.float64)) ** 2)
    return float(10 * np.log10(float(clean.max() - clean.min()) ** 2 / mse))


def steps_per_part(stack: np.ndarray, **options) -> tuple[np.ndarray, dict[int, int]]:
    """The restored stack and the steps each part ran."""
    steps: dict[int, int] = {}
    last = None
    for last in restore_steps(stack, axes="ZYX", update_every=10, **options):
        steps[last.part] = last.piece_step
    return last.result(), steps


def test_warm_started_slices_stop_sooner_and_lose_nothing():
    """A photon-limited stack: after the first slice, each starts near its answer, so the
    automatic stop comes far sooner, and the slices come out at least as good."""
    noisy, clean = samples.photon_limited((3, 64, 64), photons=30.0, seed=0)
    warm, warm_steps = steps_per_part(noisy)
    cold, cold_steps = steps_per_part(noisy, warm_start=False)
    assert warm_steps[0] == cold_steps[0]  # the first slice has no neighbour: the same fit
    np.testing.assert_array_equal(warm[0], cold[0])
    assert sum(warm_steps.values()) < 0.8 * sum(cold_steps.values()), (warm_steps, cold_steps)
    quality = [np.mean([psnr(clean[i], out[i]) for i in (1, 2)]) for out in (warm, cold)]
    assert quality[0] > quality[1] - 0.2, quality


def test_tiles_hand_over_whatever_the_timing():
    """Tiles fitted side by side: tile t of slice 1 waits for tile t of slice 0, so the result
    is the same on every run, and it is not what cold tiles give."""
    stack = np.stack([samples.noisy(sigma=25, size=64, seed=s)[0] for s in range(2)])
    options = {"tile": 32, "tile_overlap": 8, "workers": 2, "steps": 12, "stop": "none"}
    first = napari_dip.denoise(stack, axes="ZYX", **options)
    again = napari_dip.denoise(stack, axes="ZYX", **options)
    cold = napari_dip.denoise(stack, axes="ZYX", warm_start=False, **options)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[0], cold[0])
    assert np.abs(first[1].astype(float) - cold[1]).mean() > 0.5


def test_the_slice_after_a_failed_one_starts_cold(monkeypatch):
    """Slice 0 fails after its first update: slice 1 does not wait for a hand-over that never
    comes (a hang is a failure here), it is fitted from scratch, and slice 2 from slice 1."""
    stack = np.stack([samples.noisy(sigma=25, size=16, seed=s)[0] for s in range(3)])
    run = {"axes": "ZYX", "steps": 6, "stop": "none", "update_every": 2, "device": "cpu"}
    cold = napari_dip.denoise(stack, warm_start=False, **run)
    warm = napari_dip.denoise(stack, **run)
    fail_piece(monkeypatch, lambda piece: piece.part == 0)
    partial: list[np.ndarray] = []

    def failing_run():
        with pytest.raises(napari_dip.RestorationError) as caught:
            napari_dip.denoise(stack, **run)
        partial.append(caught.value.result)

    thread = threading.Thread(target=failing_run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "slice 1 waits for slice 0's hand-over"
    (result,) = partial
    np.testing.assert_array_equal(result[0], stack[0])  # the failed slice: the input
    np.testing.assert_array_equal(result[1], cold[1])  # from scratch
    assert not np.array_equal(result[2], cold[2]) and not np.array_equal(result[2], warm[2])


def test_a_hand_over_waits_and_a_failed_piece_hands_over_nothing():
    slot = fitting.WarmSlot()
    assert slot.take(should_stop=lambda: True) is None  # nothing yet, the run stopping
    slot.put({"w": np.zeros(1)})
    slot.put(None)  # a late 'nothing' (the fit's cleanup) keeps what was handed over
    assert list(slot.take()) == ["w"]
    failed = fitting.WarmSlot()
    failed.put(None)
    assert failed.take() is None


def test_warm_start_is_checked():
    with pytest.raises(TypeError, match="warm_start must be True or False"):
        napari_dip.denoise(np.zeros((2, 8, 8)), axes="ZYX", warm_start="yes")


def test_a_warm_started_slice_tells_its_stop_rule(monkeypatch):
    """Slices after the first start from weights: their rule knows (and may relax the guards
    meant for a cold start's first steps); the first slice's, and every cold one's, does not."""
    seen: list[bool] = []
    fit = fitting.engine.fit

    def spy(*args, **kwargs):
        seen.append(kwargs["stop_rule"].warm)
        return fit(*args, **kwargs)

    monkeypatch.setattr(fitting.engine, "fit", spy)
    stack = np.stack([samples.noisy(sigma=25, size=16, seed=s)[0] for s in range(3)])
    run = {"axes": "ZYX", "steps": 6, "update_every": 2, "device": "cpu"}
    napari_dip.denoise(stack, **run)
    assert seen == [False, True, True]
    seen.clear()
    napari_dip.denoise(stack, warm_start=False, **run)
    assert seen == [False, False, False]
