"""The run-time estimate said before a run starts."""

from __future__ import annotations

import numpy as np
import pytest

import napari_dip
from napari_dip.estimate import TimeEstimate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_estimate_times_real_steps_and_scales_to_the_budget():
    est = napari_dip.estimate_time((48, 40), preset="fast")
    assert est.seconds_per_step > 0
    from napari_dip.pipeline.plan import default_steps

    assert est.typical_steps <= est.max_steps == default_steps("fast", "denoise")
    assert est.max_seconds == pytest.approx(est.seconds_per_step * est.max_steps)
    assert "steps" in str(est)


def test_estimate_for_super_resolution_and_a_fixed_budget():
    est = napari_dip.estimate_time((20, 24), task="super_resolve", factor=2, steps=50, stop="none")
    assert est.max_steps == est.typical_steps == 50
    assert str(est).startswith("about ")


def test_estimate_without_a_rule_counts_every_step():
    # more steps than the preset's count and nothing to stop early: all of them run
    est = napari_dip.estimate_time((16, 16), steps=5000, stop="none", timed_steps=1)
    assert est.typical_steps == est.max_steps == 5000


def test_estimate_of_a_big_image_times_one_tile_and_counts_them_all():
    # 3000² would be cut into tiles by restore_steps: timed on one tile, not on 9 M pixels.
    # On the CPU, as the plan it is compared with (device="auto" on a CUDA machine plans 16
    # tiles of 1024², not 576 of 144²)
    est = napari_dip.estimate_time((3000, 3000), steps=10, stop="none", timed_steps=1, device="cpu")
    from napari_dip.pipeline.plan import make_plan
    from napari_dip.pipeline.request import make_request

    plan = make_plan(make_request(np.zeros((3000, 3000), np.uint8), device="cpu"))
    assert plan.tiles is not None and est.tiles == len(plan.tiles) > 1
    assert est.max_steps == est.typical_steps == 10 * est.tiles
    assert str(est).endswith(f"over {est.tiles} tiles")
    # a tile size asked for is honoured: 40 px in 16 px tiles overlapping by 2 makes 3 × 3
    small = napari_dip.estimate_time((40, 40), tile=16, steps=5, stop="none", timed_steps=1)
    assert small.tiles == 9
    assert napari_dip.estimate_time((40, 40), tile=None, steps=5, timed_steps=1).tiles == 1


def test_typical_denoising_steps_grow_with_the_side_of_a_fit():
    # measured with fast: ~500 steps at 128², ~1100 at 256², ~2200 at 512² (stop="auto")
    def typical(shape, **kw):  # on the CPU, whose tiles these are, on a CUDA machine too
        options = {"steps": 9000, "timed_steps": 1, "device": "cpu", **kw}
        return napari_dip.estimate_time(shape, **options).typical_steps

    assert typical((256, 256), tile=None) == 1000
    assert typical((512, 512), tile=None) == 2000  # whole
    # 4 × 4 tiles of 144², the default on a CPU, with the lighter tile network: 0.7 × 562
    assert typical((512, 512)) == 16 * 394
    assert typical((256, 256)) == 4 * 394  # 2 × 2 of them
    assert typical((128, 128)) == 500  # whole
    # light tiles of inpainting and super-resolution: their measured steps a tile, when the
    # automatic stop (smoothed self-validation) ends them; the preset's 2000 otherwise
    assert typical((512, 512), task="inpaint", tile=144) == 16 * 1100
    assert typical((64, 64), task="super_resolve", factor=4) == 4 * 1000  # 2 × 2 tiles
    assert typical((256, 256), task="super_resolve", factor=2) == 16 * 1000  # 72-px tiles
    assert typical((64, 64), task="super_resolve", factor=4, stop="validation") == 4 * 2000
    assert typical((64, 64), task="super_resolve", factor=4, tile=None) == 2000  # whole


def test_estimate_text_reads_well():
    est = TimeEstimate(seconds_per_step=0.05, typical_steps=1000, max_steps=3000)
    assert str(est) == "typically about 50 s (~1000 steps), at most 2 min 30 s (3000 steps)"
