"""Property-based tests (Hypothesis) of the public API and the CLI.

Every generated case must end in a correct result — the input's dtype, the right shape (Y and X
times the factor for super-resolution), finite values within the input's intensity range — or
in a ``ValueError``/``TypeError`` whose message names the offending parameter or property;
never another exception, a hang, or a modified input (inputs are hashed before and after).

Most cases check the cheap path: a request is checked when ``restore_steps`` is called, before
any fit, and what only the pixels show (NaN, a constant image, a side of 1 pixel) raises on the
first ``next()``, still before a step. A few cases per test fit for real (``steps=1``). Each test
has an oracle — an independent statement of which inputs are valid and, for the others, words
the error must contain — so a wrongly accepted input fails as surely as a wrong error.

The number of cases each test generated is printed at the end of the run ("property cases")
for the table in docs/reliability.md; ``--hypothesis-show-statistics`` adds Hypothesis's own
statistics, with the input classes as events.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import math
import numbers
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from napari_dip import deconvolve, denoise, inpaint, restore_steps, samples, super_resolve
from napari_dip.cli import main
from napari_dip.engine import resolve_device
from napari_dip.options import NOISES, Options, choice_names
from napari_dip.psf import gaussian_psf

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = {"steps": 1, "stop": "none", "device": "cpu", "update_every": 1}
FLOAT32_MAX = float(np.finfo(np.float32).max)
DEFAULT_NOISE = Options().noise
CASES: collections.Counter = collections.Counter()  # (test, input class, outcome) -> examples


def budget(examples: int) -> settings:
    """Few examples and no deadline (a shared 2-core machine); no example database on disk."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,  # one torch thread for the whole test: enough
        ],
    )


@pytest.fixture(scope="module", autouse=True)
def report_cases(request):
    """Print how many cases each test generated, by input class and outcome."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or not CASES:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        write_cases(reporter)


def write_cases(reporter) -> None:
    reporter.write_line("")
    reporter.write_line(f"property cases: {sum(CASES.values())} in all")
    tests = sorted({test for test, _, _ in CASES})
    for test in tests:
        mine = {k: v for k, v in CASES.items() if k[0] == test}
        outcomes = collections.Counter()
        for (_, _, outcome), n in mine.items():
            outcomes[outcome] += n
        classes = collections.Counter()
        for (_, cls, _), n in mine.items():
            classes[cls] += n
        total = sum(mine.values())
        split = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        reporter.write_line(f"  {test}: {total} ({split})")
        reporter.write_line(
            "    classes: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items()))
        )


def record(test: str, cls: str, outcome: str) -> None:
    CASES[(test, cls, outcome)] += 1
    event(f"{cls}: {outcome}")


# --- helpers ----------------------------------------------------------------------------------


def fingerprint(*values: object) -> list:
    """What must not change: every array's dtype, shape and bytes (lists by their repr)."""
    prints = []
    for value in values:
        if isinstance(value, np.ndarray):
            data = np.ascontiguousarray(value).tobytes() if value.dtype != object else repr(value)
            if isinstance(data, str):
                data = data.encode()
            prints.append((value.dtype.str, value.shape, hashlib.sha256(data).hexdigest()))
        else:
            prints.append(repr(value))
    return prints


def outcome(call) -> tuple[object, BaseException | None]:
    """``call()``'s result, or the ValueError/TypeError it raised; anything else fails here."""
    try:
        return call(), None
    except (ValueError, TypeError) as err:
        return None, err


def judge(test: str, cls: str, err: BaseException | None, problems: list, what: str) -> None:
    """The oracle's verdict on one case, counted for the table: accepted only when it has no
    ``problems``, refused only with an error naming one of them."""
    if err is None:
        assert not problems, f"accepted {what}: {problems}"
        record(test, cls, "accepted")
    else:
        check_named(err, problems)
        record(test, cls, "refused")


def check_named(err: BaseException, problems: list[tuple[str, ...]]) -> None:
    """``err`` names one of ``problems`` (each a tuple of words, any of which will do)."""
    assert problems, f"a valid input was refused: {type(err).__name__}: {err}"
    text = str(err).lower()
    words = [w for p in problems for w in p]
    assert any(w.lower() in text for w in words), (
        f"{type(err).__name__}: {err!s} names none of {words}"
    )


def first_step(call):
    """Call ``restore_steps`` and take its first snapshot only when the pixels hold a problem
    (they raise there, before the first step); a valid request is closed unread: no fit."""

    def run(expect_pixel_error: bool):
        steps = call()
        try:
            if expect_pixel_error:
                next(steps)
        finally:
            steps.close()
        return steps

    return run


def check_result(out: np.ndarray, image: np.ndarray, shape: tuple, known: np.ndarray | None = None):
    """A correct result: the input's dtype, ``shape``, finite, within the input's range (of
    its known pixels for inpainting) and so within the dtype's."""
    assert out.dtype == image.dtype, (out.dtype, image.dtype)
    assert out.shape == shape, (out.shape, shape)
    values = out.astype(np.float64)
    assert np.all(np.isfinite(values))
    source = image.astype(np.float64) if known is None else image.astype(np.float64)[known]
    lo, hi = float(source.min()), float(source.max())
    tol = 1e-6 * (abs(lo) + abs(hi)) + (1.0 if image.dtype.kind in "iu" else 1e-3 * (hi - lo))
    if image.dtype == np.float16:
        tol += 1e-3 * (abs(lo) + abs(hi))
    assert values.min() >= lo - tol and values.max() <= hi + tol, (
        values.min(),
        values.max(),
        lo,
        hi,
    )
    if image.dtype.kind in "iu":
        info = np.iinfo(image.dtype)
        assert int(out.min()) >= info.min and int(out.max()) <= info.max


# --- images: dtypes and shapes ---------------------------------------------------------------

NUMERIC = [
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
]
OTHER = ["bool", "complex64", "complex128", "object", "U3", "datetime64[s]"]


def fill(dtype: np.dtype, shape: tuple, seed: int, kind: str) -> np.ndarray:
    """An array of ``dtype`` and ``shape``: random values of ``kind`` ("normal", "extreme": the
    type's whole range, "constant", "nan", "inf", "huge": beyond float32's range)."""
    rng = np.random.default_rng(seed)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "c":
        return (rng.random(shape) + 1j * rng.random(shape)).astype(dtype)
    if dtype.kind == "O":
        values = np.empty(shape, object)
        values.ravel()[:] = [float(v) for v in rng.random(values.size)]
        return values
    if dtype.kind == "U":
        return np.full(shape, "abc", dtype)
    if dtype.kind == "M":
        return np.zeros(shape, dtype)
    if kind == "constant":
        return np.full(shape, 3, dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if kind == "extreme":
            values = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
            flat = values.ravel()
            flat[:2] = (info.min, info.max)[: flat.size]
            return values
        return rng.integers(max(info.min, -100), min(info.max, 200), shape, dtype=dtype)
    top = min(float(np.finfo(dtype).max), FLOAT32_MAX)  # the network computes in float32
    span = {"extreme": top / 4, "huge": 1e300}.get(kind, 100.0)
    values = ((rng.random(shape) - 0.5) * 2 * span).astype(dtype)
    if kind in ("nan", "inf") and values.size:
        values.ravel()[rng.integers(values.size)] = np.nan if kind == "nan" else -np.inf
    return values


@st.composite
def images(draw, dims=(1, 6), dtypes=NUMERIC + OTHER, kinds=None):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    ndim = draw(st.integers(*dims))
    if ndim == 2 and draw(st.booleans()):  # huge aspect ratios and single rows
        shape = draw(st.sampled_from([(2, 300), (300, 2), (1, 300), (3, 1), (1, 1), (0, 5)]))
    else:
        side = 6 if ndim <= 3 else 3
        shape = tuple(draw(st.lists(st.integers(0, side), min_size=ndim, max_size=ndim)))
    if kinds is None:
        kinds = ["normal", "extreme", "constant"]
        if dtype.kind == "f":
            kinds += ["nan", "inf"] + (["huge"] if dtype == np.float64 else [])
    kind = draw(st.sampled_from(kinds))
    return fill(dtype, shape, draw(st.integers(0, 2**16)), kind), kind


def pixel_problems(chw: np.ndarray, what: str = "image") -> list[tuple[str, ...]]:
    """What ``prepare_image`` finds in the pixels of a ``(C, H, W)`` (or longer) part."""
    if chw.size == 0:
        return [("empty",)]
    if min(chw.shape[-2:]) < 2:
        return [("at least 2 pixels",)]
    values = chw.astype(np.float64)
    if not np.all(np.isfinite(values)):
        return [("nan or infinite",)]
    if np.abs(values).max() > FLOAT32_MAX:
        return [("float32",)]
    if values.min() == values.max():
        return [("constant",)]
    return []


def image_problems(image: np.ndarray, channel_axis: object) -> tuple[list, list]:
    """(problems found at the call, problems the pixels show) of a plain image."""
    if image.dtype == bool:
        return [("boolean",)], []
    if image.dtype.kind not in "iuf":
        return [("dtype",)], []
    if image.ndim == 2:
        if channel_axis is not None:
            return [("channel_axis",)], []
        return [], pixel_problems(image[None])
    if image.ndim == 3:
        if channel_axis is None:
            return [("channel_axis",)], []
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
            return [("channel_axis",)], []
        if not -3 <= channel_axis < 3:
            return [("channel_axis", "out of range")], []
        return [], pixel_problems(np.moveaxis(image, channel_axis, 0))
    return [("dimensions",)], []


@budget(150)
@given(images(), st.sampled_from([None, None, -1, 0, 2, 3, -4, True, 1.0]))
def test_any_dtype_and_shape_is_checked_before_a_fit(case, channel_axis):
    image, kind = case
    before = fingerprint(image)
    at_call, in_pixels = image_problems(image, channel_axis)
    run = first_step(lambda: restore_steps(image, channel_axis=channel_axis, **QUICK))
    _, err = outcome(lambda: run(bool(in_pixels)))
    cls = f"{image.dtype.name} {image.ndim}D {kind}"
    judge("dtypes and shapes", cls, err, at_call + in_pixels, f"{cls} {image.shape}")
    assert fingerprint(image) == before


@st.composite
def valid_images(draw):
    """Images every check accepts: 2D (huge aspect ratios too) or 2D with channels."""
    dtype = np.dtype(draw(st.sampled_from(NUMERIC)))
    shape = draw(
        st.one_of(
            st.tuples(st.integers(2, 8), st.integers(2, 8)),
            st.sampled_from([(2, 300), (300, 2), (2, 2)]),
            st.tuples(st.integers(2, 6), st.integers(2, 6), st.integers(1, 4)),
        )
    )
    kind = draw(st.sampled_from(["normal", "extreme"]))
    image = fill(dtype, shape, draw(st.integers(0, 2**16)), kind)
    image.ravel()[:2] = np.array([0, 1], dtype) if kind == "normal" else image.ravel()[:2]
    return image, kind


@budget(10)
@given(valid_images())
def test_valid_images_are_restored_in_their_dtype_and_range(case):
    image, kind = case
    channel_axis = -1 if image.ndim == 3 else None
    before = fingerprint(image)
    out = denoise(image, channel_axis=channel_axis, **QUICK)
    check_result(out, image, image.shape)
    assert fingerprint(image) == before
    record("fits: dtypes and shapes", f"{image.dtype.name} {image.ndim}D {kind}", "restored")


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "uint32", "int64", "uint64"])
def test_a_constant_slice_at_the_dtype_maximum_comes_back_exactly(dtype):
    """A stack keeps a constant slice as it is, through the float32 result and the cast back:
    at the type's maximum it must not wrap around (uint32's maximum came back as 0)."""
    info = np.iinfo(dtype)
    stack = np.zeros((2, 6, 6), dtype)
    stack[0] = info.max
    stack[1] = np.random.default_rng(0).integers(0, 100, (6, 6))
    out = denoise(stack, axes="ZYX", **QUICK)
    assert out.dtype == stack.dtype
    top = int(info.max) if np.dtype(dtype).itemsize < 8 else int(np.nextafter(float(info.max), 0))
    assert int(out[0].min()) >= top - 2 ** max(0, 8 * np.dtype(dtype).itemsize - 24)
    assert int(out[1].max()) <= 99 + 1 and int(out[1].min()) >= 0


# --- axes strings ----------------------------------------------------------------------------


@st.composite
def stacks(draw):
    ndim = draw(st.integers(1, 6))
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=ndim, max_size=ndim)))
    if draw(st.booleans()) and 2 <= ndim <= 5:  # a valid string often, in any order and case
        letters = [*draw(st.permutations("TZC"))[: ndim - 2], "Y", "X"]
        axes = "".join(draw(st.permutations(letters)))
        axes = axes.lower() if draw(st.booleans()) else axes
    else:
        axes = draw(
            st.one_of(
                st.text(alphabet="TZCYXQyx", max_size=7),
                st.sampled_from([None, 3, b"ZYX", ["Z", "Y", "X"]]),
            )
        )
    mode = draw(st.sampled_from(["slices", "slices", "volume", "3d"]))
    return np.random.default_rng(ndim).random(shape), axes, mode


def axes_problems(shape: tuple, axes: object, mode: str) -> list[tuple[str, ...]]:
    """The call's checks of a stack: the axes string, the mode, empty axes."""
    if axes is None:  # a plain image
        return image_problems(np.zeros(shape), None)[0] + ([("mode",)] if mode != "slices" else [])
    if not isinstance(axes, str):
        return [("axes must be a string",)]
    letters = axes.upper()
    problems = []
    if len(letters) != len(shape):
        return [("letters", "dimensions")]
    if set(letters) - set("TZCYX"):
        problems.append(("unknown letters",))
    if len(set(letters)) != len(letters):
        problems.append(("more than once",))
    if not {"Y", "X"} <= set(letters):
        problems.append(("must contain y and x",))
    if problems:
        return problems
    if 0 in shape:
        problems.append(("empty",))
    if mode not in ("slices", "volume"):
        problems.append(("mode",))
    elif mode == "volume":
        if "Z" not in letters:
            problems.append(("z axis",))
        elif shape[letters.index("Z")] < 2:
            problems.append(("z slices", "at least 2"))
    return problems


@budget(120)
@given(stacks())
def test_axes_strings_are_checked(case):
    image, axes, mode = case
    before = fingerprint(image, axes)
    at_call = axes_problems(image.shape, axes, mode)
    pixels = []
    if not at_call and axes is not None:
        letters = axes.upper()
        sides = [image.shape[letters.index(a)] for a in "YX"]
        if min(sides) < 2:  # every slice is too small: the first one raises
            pixels = [("at least 2 pixels",)]
    elif not at_call:
        pixels = pixel_problems(image[None]) if image.ndim == 2 else []
    run = first_step(lambda: restore_steps(image, axes=axes, mode=mode, **QUICK))
    _, err = outcome(lambda: run(bool(pixels)))
    cls = "valid axes" if not at_call else "bad axes"
    judge("axes", cls, err, at_call + pixels, f"axes {axes!r} for {image.shape}, {mode}")
    assert fingerprint(image, axes) == before


@budget(5)
@given(
    st.sampled_from(["ZYX", "TZYX", "YXC", "CYX", "ZCYX"]),
    st.sampled_from(["slices", "volume"]),
    st.integers(0, 2**16),
)
def test_valid_stacks_are_restored(axes, mode, seed):
    if mode == "volume" and "Z" not in axes:
        mode = "slices"
    sizes = {"T": 1, "Z": 2, "C": 2, "Y": 6, "X": 5}
    image = (np.random.default_rng(seed).random([sizes[a] for a in axes]) * 1000).astype(np.uint16)
    before = fingerprint(image)
    out = denoise(image, axes=axes, mode=mode, **QUICK)
    check_result(out, image, image.shape)
    assert fingerprint(image) == before
    record("fits: stacks", f"{axes} {mode}", "restored")


# --- masks -----------------------------------------------------------------------------------

H, W = 8, 9
MASK_KINDS = [
    "none missing",
    "all missing",
    "random bool",
    "random uint8",
    "random float",
    "list",
    "float nan",
    "float inf",
    "complex",
    "object",
    "str",
    "transposed",
    "extra axis",
    "empty",
    "ragged list",
    "None",
]


def make_mask(kind: str, shape: tuple[int, int], seed: int) -> object:
    rng = np.random.default_rng(seed)
    holes = rng.random(shape) < 0.3
    holes.ravel()[0] = True  # at least one hole
    holes.ravel()[-1] = False  # and one known pixel
    return {
        "none missing": lambda: np.zeros(shape, bool),
        "all missing": lambda: np.ones(shape, np.uint8),
        "random bool": lambda: holes,
        "random uint8": lambda: holes.astype(np.uint8) * 255,
        "random float": lambda: holes.astype(np.float32),
        "list": lambda: holes.astype(int).tolist(),
        "float nan": lambda: np.where(holes, np.nan, 0.0),
        "float inf": lambda: np.where(holes, np.inf, 0.0),
        "complex": lambda: holes.astype(np.complex64),
        "object": lambda: holes.astype(object),
        "str": lambda: np.where(holes, "x", ""),
        "transposed": lambda: holes.T.copy(),
        "extra axis": lambda: holes[None],
        "empty": lambda: np.zeros((0, shape[1]), bool),
        "ragged list": lambda: [[0, 1], [1]],
        "None": lambda: None,
    }[kind]()


MASK_PROBLEMS = {
    "all missing": [("every pixel as missing",)],
    "float nan": [("nan",)],
    "float inf": [("nan or infinite",)],
    "complex": [("mask has dtype",)],
    "object": [("mask has dtype",)],
    "str": [("mask has dtype",)],
    "transposed": [("mask shape",)],
    "extra axis": [("mask shape",)],
    "empty": [("mask shape",)],
    "ragged list": [("mask",)],
    "None": [("needs a mask",)],
}


@budget(60)
@given(st.sampled_from(MASK_KINDS), st.booleans(), st.booleans(), st.integers(0, 2**16))
def test_masks_are_checked(kind, stack, nan_in_holes, seed):
    rng = np.random.default_rng(seed)
    mask = make_mask(kind, (H, W), seed)
    image = rng.random((2, H, W) if stack else (H, W))
    if nan_in_holes and isinstance(mask, np.ndarray) and mask.shape == (H, W):
        if mask.dtype.kind in "biuf" and np.all(np.isfinite(mask)) and 0 < np.count_nonzero(mask):
            image[..., mask != 0] = np.nan  # values under the mask are ignored, NaN included
    before = fingerprint(image, mask)
    problems = MASK_PROBLEMS.get(kind, [])
    kwargs = {"axes": "ZYX"} if stack else {}
    run = first_step(lambda: restore_steps(image, task="inpaint", mask=mask, **kwargs, **QUICK))
    _, err = outcome(lambda: run(bool(problems)))
    judge("masks", kind, err, problems, f"a mask: {kind}")
    assert fingerprint(image, mask) == before


@budget(6)
@given(
    st.sampled_from(["none missing", "random bool", "random uint8", "list"]),
    st.sampled_from(["uint8", "int16", "float32"]),
    st.integers(0, 2**16),
)
def test_valid_masks_fill_the_holes(kind, dtype, seed):
    image = fill(np.dtype(dtype), (H, W), seed, "normal")
    mask = make_mask(kind, (H, W), seed)
    before = fingerprint(image, mask)
    out = inpaint(image, mask, **QUICK)
    check_result(out, image, image.shape, known=np.asarray(mask) == 0)
    assert fingerprint(image, mask) == before
    record("fits: masks", kind, "restored")


# --- super-resolution factors ----------------------------------------------------------------

FACTORS = st.one_of(
    st.integers(-3, 6),
    st.floats(-4, 6, allow_nan=False),
    st.sampled_from(
        [
            2.0,
            3.0,
            2.5,
            math.nan,
            math.inf,
            -math.inf,
            True,
            False,
            None,
            "2",
            b"2",
            [2],
            np.int8(2),
            np.int64(3),
            np.uint8(1),
            np.float32(2.0),
            np.float64(2.5),
            10**6,
            complex(2, 0),
        ]
    ),
)


def factor_problems(factor: object) -> list[tuple[str, ...]]:
    if factor is None or isinstance(factor, bool) or not isinstance(factor, numbers.Real):
        return [("factor",)]
    if not math.isfinite(float(factor)) or not float(factor).is_integer() or factor < 2:
        return [("factor must be an integer >= 2",)]
    return []


@budget(80)
@given(FACTORS)
def test_factors_are_checked(factor):
    image = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    before = fingerprint(image)
    problems = factor_problems(factor)
    run = first_step(lambda: restore_steps(image, task="super_resolve", factor=factor, **QUICK))
    _, err = outcome(lambda: run(False))
    cls = type(factor).__name__
    judge("factors", cls, err, problems, f"factor {factor!r}")
    assert fingerprint(image) == before


@budget(5)
@given(
    st.sampled_from([2, 3, 2.0, np.int64(2)]),
    st.sampled_from([(2, 40), (5, 4), (6, 6, 3)]),
    st.sampled_from(["uint8", "float32", "uint16"]),
    st.integers(0, 2**16),
)
def test_super_resolution_multiplies_y_and_x(factor, shape, dtype, seed):
    image = fill(np.dtype(dtype), shape, seed, "normal")
    ca = -1 if len(shape) == 3 else None
    before = fingerprint(image)
    out = super_resolve(image, factor, channel_axis=ca, **QUICK)
    f = int(factor)
    want = (shape[0] * f, shape[1] * f, *shape[2:])
    check_result(out, image, want)
    assert fingerprint(image) == before
    record("fits: factors", f"x{f} {dtype}", "restored")


# --- point-spread functions ------------------------------------------------------------------

PSF_KINDS = {
    # kind: (psf maker for a 12×12 image, words the error must contain; () = valid)
    "gaussian": (lambda r: gaussian_psf(1.0, size=5), ()),
    "even size": (lambda r: np.ones((4, 2)), ()),
    "delta": (lambda r: np.ones((1, 1)), ()),
    "integer box": (lambda r: np.ones((3, 3), np.uint8), ()),
    "leading 1 axis": (lambda r: np.ones((1, 3, 3)), ()),
    "slightly negative": (lambda r: gaussian_psf(1.0, size=5) - 1e-5, ()),
    "huge values": (lambda r: np.full((3, 3), 1e300), ()),
    "as image size": (lambda r: np.ones((12, 12)), ()),
    "nan": (lambda r: np.where(np.eye(3, dtype=bool), np.nan, 1.0), ("nan",)),
    "inf": (lambda r: np.full((3, 3), np.inf), ("infinite",)),
    "negative": (lambda r: gaussian_psf(1.0, size=5) - 0.01, ("negative",)),
    "all zero": (lambda r: np.zeros((3, 3)), ("all zero",)),
    "negative sum": (lambda r: -np.ones((3, 3)), ("not positive",)),
    "larger than image": (lambda r: np.ones((13, 3)), ("larger than the image",)),
    "off-centre": (lambda r: np.pad(np.ones((1, 1)), ((0, 6), (0, 6))), ("off-centre",)),
    "1D": (lambda r: np.ones(5), ("must be 2d",)),
    "3D": (lambda r: np.ones((3, 3, 3)), ("must be 2d",)),
    "4D": (lambda r: np.ones((2, 1, 3, 3)), ("must be 2d",)),
    "empty": (lambda r: np.zeros((0, 3)), ("empty",)),
    "bool": (lambda r: np.ones((3, 3), bool), ("real numbers",)),
    "complex": (lambda r: np.ones((3, 3), complex), ("real numbers",)),
    "object": (lambda r: np.ones((3, 3), object), ("real numbers",)),
    "ragged list": (lambda r: [[1, 2], [3]], ("psf",)),
    "None": (lambda r: None, ("needs a psf",)),
}


@budget(70)
@given(st.sampled_from(sorted(PSF_KINDS)), st.integers(0, 2**16))
def test_psfs_are_checked(kind, seed):
    rng = np.random.default_rng(seed)
    make, words = PSF_KINDS[kind]
    psf = make(rng)
    image = rng.random((12, 12)).astype(np.float32)
    before = fingerprint(image, psf)
    run = first_step(lambda: restore_steps(image, task="deconvolve", psf=psf, **QUICK))
    _, err = outcome(lambda: run(False))
    judge("psfs", kind, err, [words] if words else [], f"a PSF: {kind}")
    assert err is None or "psf" in str(err).lower(), err
    assert fingerprint(image, psf) == before


@budget(5)
@given(
    st.sampled_from([k for k, (_, words) in PSF_KINDS.items() if not words]),
    st.sampled_from([None, 2]),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_valid_psfs_deconvolve(kind, factor, masked, seed):
    rng = np.random.default_rng(seed)
    psf = PSF_KINDS[kind][0](rng)
    image = (rng.random((12, 12)) * 4000).astype(np.uint16)
    mask = (rng.random((12, 12)) < 0.2) if masked else None
    before = fingerprint(image, psf, mask)
    out = deconvolve(image, psf, mask=mask, factor=factor, **QUICK)
    f = factor or 1
    check_result(out, image, (12 * f, 12 * f), known=None if mask is None else ~mask)
    assert fingerprint(image, psf, mask) == before
    record(
        "fits: psfs",
        kind + (f" x{f}" if factor else "") + (" masked" if masked else ""),
        "restored",
    )


# --- run options -----------------------------------------------------------------------------


def _cuda(index: int = 0) -> bool:
    return torch.cuda.is_available() and index < torch.cuda.device_count()


def _mps() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


# name -> [(value, valid)] ; ``valid`` may depend on the machine (devices)
OPTION_VALUES: dict[str, list[tuple[object, bool]]] = {
    "steps": [(1, True), (3, True), (np.int64(2), True), (None, True)]
    + [(v, False) for v in (0, -1, 2.5, True, "3")],
    "stop": [(v, True) for v in ("none", "budget", None, "auto", "wmv", "emv", "sharpness")]
    + [(v, True) for v in ("discrepancy", "validation", "sure")]
    + [(v, False) for v in ("oracle", 3, "")],
    "noise": [(v, True) for v in choice_names(NOISES)] + [(v, False) for v in ("laplace", None, 1)],
    "tile": [(v, True) for v in ("auto", None, 16, 64)]
    + [(v, False) for v in (0, 15, -16, 2.5, True, "big")],
    "tile_overlap": [(v, True) for v in (None, 0, 2, 7, 8)] + [(v, False) for v in (-1, 2.5, "a")],
    "workers": [(v, True) for v in ("auto", 1, 2)]
    + [(v, False) for v in (0, -1, "many", 1.5, True)],
    "ensemble": [(1, True), (2, True)] + [(v, False) for v in (0, 1.5, True, "2")],
    "normalize": [(v, True) for v in (None, "minmax", (0.1, 99.9), [1, 99], (0, 100))]
    + [
        (v, False)
        for v in ((50, 50), (99, 1), (-1, 50), (1, 101), "x", (1, 2, 3), (math.nan, 2), 5)
    ],
    "device": [(v, True) for v in ("cpu", "CPU", " cpu ", "cpu:0", "auto")]
    + [("cuda", _cuda()), ("cuda:0", _cuda()), ("cuda:7", _cuda(7)), ("mps", _mps())]
    + [(v, False) for v in ("", "tpu", "cuda:x", "meta", 3, None)],
    "precision": [(v, True) for v in ("auto", "float32", "bfloat16", "float16")]
    + [(v, False) for v in ("half", 16)],
    "seed": [(v, True) for v in (0, -1, 2**62, np.int32(5))]
    + [(v, False) for v in (2**70, 1.5, True, "1")],
    "lr": [(v, True) for v in (None, 0.01, 1)]
    + [(v, False) for v in (0, -1, math.nan, math.inf, "x", True)],
    "tv_weight": [(0, True), (0.01, True)]
    + [(v, False) for v in (-1, math.nan, math.inf, "x", True)],
    "perturb_std": [(v, True) for v in (None, 0, 0.05)] + [(v, False) for v in (-1, math.nan, "x")],
    "update_every": [(1, True), (5, True)] + [(v, False) for v in (0, 2.5)],
    "gain": [(None, True), (1.5, True)] + [(v, False) for v in (0, -1, math.nan, "x")],
    "offset": [(None, True), (0, True), (-3.5, True)] + [(v, False) for v in (math.nan, "x")],
    "read_noise": [(None, True), (0, True), (2, True)] + [(v, False) for v in (-1, math.nan)],
    "uncertainty": [(False, True), (True, True)] + [(v, False) for v in (1, "yes")],
    "preset": [("fast", True)] + [(v, False) for v in ("slowest", 3, ["fast"])],
    "stepz": [(1, False)],  # an unknown option
}
OPTION_WORDS = {"stepz": "unknown option", "stop": "stop", "precision": "precision"}


def option_problems(chosen: dict) -> list[tuple[str, ...]]:
    """Problems of a set of options for a 24×24 denoising run on this machine."""
    problems = [(OPTION_WORDS.get(name, name),) for name, (_, valid) in chosen.items() if not valid]
    values = {name: value for name, (value, _) in chosen.items()}
    device = values.get("device", "cpu")
    if not problems:
        tile, overlap = values.get("tile", "auto"), values.get("tile_overlap")
        if isinstance(tile, int) and overlap is not None and overlap >= tile / 2:
            problems.append(("tile_overlap",))
        if values.get("stop") == "discrepancy" and values.get("tv_weight", 0):
            problems.append(("discrepancy",))
        if values.get("precision") == "float16" and resolve_device(device).type == "cpu":
            problems.append(("float16",))
        noise = values.get("noise", DEFAULT_NOISE)
        for name in ("gain", "offset", "read_noise"):  # a camera's terms: photon noise only
            if values.get(name) is not None and noise == "gaussian":
                problems.append((name, "only apply"))
        if values.get("read_noise") is not None and noise == "poisson":
            problems.append(("read_noise",))
    return problems


@st.composite
def option_sets(draw, valid_only: bool = False):
    names = draw(st.lists(st.sampled_from(sorted(OPTION_VALUES)), unique=True, max_size=4))
    chosen = {}
    for name in names:
        values = [v for v in OPTION_VALUES[name] if v[1] or not valid_only]
        if values:
            chosen[name] = draw(st.sampled_from(values))
    return chosen


@budget(150)
@given(option_sets())
def test_options_are_checked(chosen):
    image = np.random.default_rng(0).random((24, 24)).astype(np.float32)
    options = {**QUICK, **{name: value for name, (value, _) in chosen.items()}}
    before = fingerprint(image)
    problems = option_problems(chosen)
    run = first_step(lambda: restore_steps(image, **options))
    _, err = outcome(lambda: run(False))
    cls = "bad options" if problems else "valid options"
    judge("options", cls, err, problems, f"{options}")
    assert fingerprint(image) == before


@budget(8)
@given(option_sets(valid_only=True), st.integers(0, 2**16))
def test_valid_options_restore(chosen, seed):
    options = {name: value for name, (value, _) in chosen.items()}
    noise = options.get("noise", DEFAULT_NOISE)
    if noise in ("poisson", "poisson-gaussian"):  # photon counts from a known camera
        options |= {"gain": 1.0, "offset": 0.0}
        options |= {"read_noise": 1.0} if noise == "poisson-gaussian" else {}
    else:  # too small to estimate a camera from: none
        for name in ("gain", "offset", "read_noise"):
            options.pop(name, None)
    if option_problems({k: (v, True) for k, v in options.items()}):  # valid values that clash
        record("fits: options", "skipped (a clash)", "skipped")
        return
    options = {**QUICK, **options, "steps": 1}
    if noise in ("poisson", "poisson-gaussian"):
        image = np.random.default_rng(seed).poisson(30.0, (24, 24)).astype(np.uint16)
    else:
        image = (np.random.default_rng(seed).random((24, 24)) * 255).astype(np.uint8)
    before = fingerprint(image)
    out = denoise(image, **options)
    if options.get("uncertainty"):
        out, spread = out
        assert spread.shape == image.shape and np.all(np.isfinite(spread)) and spread.min() >= 0
    check_result(out, image, image.shape)
    assert fingerprint(image) == before
    record("fits: options", ", ".join(sorted(chosen)) or "defaults", "restored")


# --- the command line ------------------------------------------------------------------------

SIDE = 16


@pytest.fixture(scope="module")
def files():
    """A small grey PNG and the masks and PSFs the CLI cases name."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        image = samples.noisy(sigma=25, size=SIDE, seed=0)[0]
        iio.imwrite(root / "in.png", image)
        mask = np.zeros((SIDE, SIDE), np.uint8)
        mask[4:7, 3:12] = 255
        iio.imwrite(root / "mask.png", mask)
        iio.imwrite(root / "full.png", np.full((SIDE, SIDE), 255, np.uint8))
        iio.imwrite(root / "small.png", mask[:8])
        (root / "notes.png").write_text("not a picture")
        tifffile.imwrite(root / "psf.tif", gaussian_psf(1.0, size=5))
        tifffile.imwrite(root / "nanpsf.tif", np.full((3, 3), np.nan, np.float32))
        yield root, image


# flag -> [(value, outcome)]: "ok", "usage" (argparse: exit 2) or ("error", words) (exit 1)
CLI_FLAGS = {
    "--steps": [("1", "ok"), ("0", "usage"), ("-1", "usage"), ("x", "usage"), ("2.5", "usage")],
    "--stop": [(s, "ok") for s in ("none", "wmv", "validation", "sure", "discrepancy")]
    + [("oracle", "usage")],
    "--device": [
        ("cpu", "ok"),
        ("CPU", "ok"),
        ("tpu", ("error", "device")),
        ("cuda", "ok" if _cuda() else ("error", "cuda")),
        ("cuda:x", ("error", "device")),
    ],
    "--tile": [
        ("auto", "ok"),
        ("none", "ok"),
        ("16", "ok"),
        ("x", "usage"),
        ("15", ("error", "tile")),
        ("0", ("error", "tile")),
    ],
    "--workers": [("1", "ok"), ("2", "ok"), ("auto", "ok"), ("0", "usage"), ("x", "usage")],
    "--ensemble": [("1", "ok"), ("2", "ok"), ("0", "usage")],
    "--normalize": [
        ("1,99", "ok"),
        ("50,50", ("error", "normalize")),
        ("x", "usage"),
        ("1", "usage"),
    ],
    "--seed": [("0", "ok"), ("-1", "ok"), ("x", "usage")],
    "--precision": [("float32", "ok"), ("auto", "ok"), ("half", "usage"), ("float16", "float16")],
    "--update-every": [("1", "ok"), ("0", "usage")],
    "--noise": [("gaussian", "ok"), ("poisson", ("error", "noise")), ("laplace", "usage")],
    "--tv-weight": [("0", "ok"), ("0.01", "ok")]
    + [(v, ("error", "tv_weight")) for v in ("-1", "nan", "inf")],
    "--lr": [("0.01", "ok"), ("0", ("error", "lr")), ("nan", ("error", "lr")), ("x", "usage")],
}
TASK_ARGS = {
    "denoise": [([], "ok")],
    "inpaint": [
        (["--mask", "{root}/mask.png"], "ok"),
        (["--mask", "{root}/nope.png"], ("error", "no such file")),
        (["--mask", "{root}/full.png"], ("error", "every pixel as missing")),
        (["--mask", "{root}/small.png"], ("error", "mask shape")),
        (["--mask", "{root}/notes.png"], ("error", "cannot read")),
        ([], "usage"),
    ],
    "super-resolve": [
        (["--factor", "2"], "ok"),
        (["--factor", "1"], ("error", "factor")),
        (["--factor", "-2"], ("error", "factor")),
        (["--factor", "2.5"], "usage"),
        ([], "usage"),
    ],
    "deconvolve": [
        (["--psf-sigma", "1"], "ok"),
        (["--psf-sigma", "0"], "ok"),
        (["--psf-sigma", "-1"], ("error", "sigma")),
        (["--psf-sigma", "nan"], ("error", "sigma")),
        (["--psf-sigma", "2"], ("error", "larger than the image")),  # 17 × 17
        (["--psf", "{root}/psf.tif"], "ok"),
        (["--psf", "{root}/nanpsf.tif"], ("error", "nan")),
        ([], "usage"),
    ],
}


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(TASK_ARGS)))
    task_args, task_outcome = draw(st.sampled_from(TASK_ARGS[command]))
    flags = draw(st.lists(st.sampled_from(sorted(CLI_FLAGS)), unique=True, max_size=3))
    chosen = {flag: draw(st.sampled_from(CLI_FLAGS[flag])) for flag in flags}
    return command, task_args, task_outcome, chosen


def cli_expectation(command: str, task_outcome, chosen: dict) -> tuple[str, list]:
    """(``"ok"``, ``"usage"`` or ``"error"``, the words an exit-1 error may contain)."""
    outcomes = [task_outcome] + [o for _, o in chosen.values()]
    values = {flag: value for flag, (value, _) in chosen.items()}
    device = values.get("--device", "cpu")
    if "float16" in outcomes:  # float16 runs on a CUDA device only
        ok16 = device.lower().startswith("cuda") and _cuda()
        outcomes = [
            "ok" if ok16 else ("error", "float16") if o == "float16" else o for o in outcomes
        ]
    if "usage" in outcomes:
        return "usage", []
    stop = values.get("--stop")
    if stop in ("sure", "discrepancy") and command != "denoise":
        outcomes.append(("error", stop))
    if stop == "discrepancy" and values.get("--tv-weight", "0") != "0":
        outcomes.append(("error", "discrepancy"))
    errors = [(o[1],) for o in outcomes if isinstance(o, tuple)]
    return ("error", errors) if errors else ("ok", [])


@budget(30)
@given(command_lines())
def test_command_line_never_crashes(files, case):
    command, task_args, task_outcome, chosen = case
    root, image = files
    source = root / "in.png"
    out = root / "out.png"
    out.unlink(missing_ok=True)
    argv = [command, str(source), "-o", str(out), "-q"]
    argv += [a.format(root=root) for a in task_args]
    given_flags = {"--steps": "1", "--stop": "none", "--device": "cpu"}
    given_flags |= {flag: value for flag, (value, _) in chosen.items()}
    for flag, value in given_flags.items():
        argv += [flag, value]
    inputs = {p: p.read_bytes() for p in root.iterdir() if p.is_file()}
    expected, words = cli_expectation(command, task_outcome, chosen)
    err, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdout):
        code = main(argv)
    text = err.getvalue()
    assert "Traceback" not in text, text
    cls = f"{command} {expected}"
    if expected == "ok":
        assert code == 0, (argv, code, text)
        result = iio.imread(out)
        f = 2 if command == "super-resolve" else 1
        check_result(result, image, (SIDE * f, SIDE * f))
        out.unlink()
        spread = root / "out_std.tif"  # an ensemble's spread goes beside the output
        assert spread.exists() == (given_flags.get("--ensemble", "1") != "1")
        if spread.exists():
            sigma = tifffile.imread(spread)
            assert sigma.dtype == np.float32 and sigma.shape == result.shape
            assert np.all(np.isfinite(sigma)) and sigma.min() >= 0
            spread.unlink()
    elif expected == "usage":
        assert code == 2, (argv, code, text)
        assert "error:" in text.strip().splitlines()[-1]
    else:
        assert code == 1, (argv, code, text)
        lines = text.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("napari-dip: error: "), text
        check_named(ValueError(lines[0]), words)
    assert not out.exists()
    now = {p: p.read_bytes() for p in root.iterdir() if p.is_file()}
    assert set(now) == set(inputs), set(now) ^ set(inputs)  # nothing left behind
    assert [p for p in now if now[p] != inputs[p]] == []  # the inputs untouched
    record("command line", cls, {0: "written", 1: "error", 2: "usage"}[code])
