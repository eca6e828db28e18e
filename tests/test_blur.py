"""Deconvolution's forward operator (engine.blur) and the PSF checks and models (napari_dip.psf)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage, signal
from scipy.special import j1

from napari_dip.engine.blur import Convolution
from napari_dip.psf import check_psf, gaussian_psf, widefield_psf

METHODS = ("direct", "fft")
# (PSF shape, batch shape): odd and even sizes, 2D, 2D PSF on a volume, 3D.
CASES = [
    ((5, 5), (2, 3, 17, 16)),
    ((4, 6), (1, 2, 15, 18)),
    ((3, 4), (1, 2, 5, 12, 13)),
    ((3, 5, 3), (1, 2, 9, 12, 11)),
    ((4, 3, 6), (1, 1, 8, 10, 13)),
]


def reference(x: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """scipy's linear convolution, cropped with the centre at size // 2 along each axis.

    For odd sizes this is ``fftconvolve(mode="same")``; for even ones "same" centres the kernel
    at ``(size − 1) // 2``, one pixel earlier, so we crop the "full" result ourselves.
    """
    kernel = psf.reshape((1,) * (x.ndim - psf.ndim) + psf.shape)
    full = signal.fftconvolve(x, kernel, mode="full")
    crop = tuple(slice(m // 2, m // 2 + n) for m, n in zip(kernel.shape, x.shape, strict=True))
    return full[crop]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("psf_shape", "x_shape"), CASES)
def test_forward_matches_scipy(rng, method, psf_shape, x_shape):
    psf = rng.random(psf_shape)
    psf /= psf.sum()
    x = rng.random(x_shape)
    out = Convolution(psf, method)(torch.tensor(x, dtype=torch.float32))
    assert out.shape == x.shape and out.dtype == torch.float32
    expected = reference(x, psf)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    kernel = psf.reshape((1,) * (x.ndim - psf.ndim) + psf.shape)
    np.testing.assert_allclose(expected, ndimage.convolve(x, kernel, mode="constant"), atol=1e-12)
    if all(m % 2 for m in psf_shape):
        np.testing.assert_allclose(expected, signal.fftconvolve(x, kernel, mode="same"), atol=1e-12)


def test_even_psf_is_centred_at_size_over_2():
    psf = np.zeros((4, 4), np.float32)
    psf[2, 2] = 1  # a delta at size // 2 is the identity
    x = torch.rand(1, 1, 9, 9)
    for method in METHODS:
        torch.testing.assert_close(Convolution(psf, method)(x), x)
    assert Convolution(psf).margin == ((1, 2), (1, 2))
    assert Convolution(np.ones((3, 5, 2))).margin == ((1, 1), (2, 2), (0, 1))


def test_no_wrap_around():
    x = torch.zeros(1, 1, 12, 12)
    x[..., 0, 0] = 1  # light at a corner must not appear at the opposite border
    for method in METHODS:
        out = Convolution(gaussian_psf(1.5), method)(x)
        assert out[..., -4:, :].abs().max() < 1e-7 and out[..., :, -4:].abs().max() < 1e-7


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("psf_shape", "x_shape"), CASES)
def test_adjoint_identity(method, psf_shape, x_shape):
    gen = torch.Generator().manual_seed(0)
    op = Convolution(torch.rand(psf_shape, generator=gen, dtype=torch.float64), method)
    x = torch.rand(x_shape, generator=gen, dtype=torch.float64)
    y = torch.rand(x_shape, generator=gen, dtype=torch.float64)
    lhs = (op(x) * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=0)


def test_paths_agree_and_auto_rule():
    psf = gaussian_psf((1.0, 1.5, 1.2))
    x = torch.rand(1, 2, 10, 20, 20)
    direct, fft = Convolution(psf, "direct"), Convolution(psf, "fft")
    torch.testing.assert_close(direct(x), fft(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(direct.adjoint(x), fft.adjoint(x), atol=1e-5, rtol=0)
    assert Convolution(np.ones((3, 3))).uses_fft is False
    assert Convolution(np.ones((9, 9))).uses_fft is True
    assert Convolution(np.ones((2, 2, 2))).uses_fft is False
    assert Convolution(np.ones((5, 5, 5))).uses_fft is True


@pytest.mark.parametrize("method", METHODS)
def test_gradients_flow(method):
    op = Convolution(gaussian_psf(1.0), method)
    x = torch.rand(1, 1, 12, 12, requires_grad=True)
    weights = torch.rand(1, 1, 12, 12)
    (op(x) * weights).sum().backward()
    # d/dx ⟨A x, w⟩ = Aᵀ w
    torch.testing.assert_close(x.grad, op.adjoint(weights), atol=1e-6, rtol=0)


def test_fft_cache_is_reused():
    op = Convolution(gaussian_psf(2.0), "fft")
    x = torch.rand(1, 1, 16, 16)
    op(x)
    (spectrum,) = op._fft_cache.values()
    op(x)
    assert len(op._fft_cache) == 1 and next(iter(op._fft_cache.values())) is spectrum
    op(torch.rand(1, 1, 20, 16))  # another size: another entry
    assert len(op._fft_cache) == 2


def test_autocast_computes_in_float32():
    op = Convolution(gaussian_psf(1.0), "direct")
    x = torch.rand(1, 1, 10, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = op(x.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, op(x.bfloat16().float()))


def test_operator_checks():
    with pytest.raises(ValueError, match="3D PSF needs"):
        Convolution(np.ones((3, 3, 3)))(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="method"):
        Convolution(np.ones((3, 3)), "spline")
    with pytest.raises(TypeError, match="real"):
        Convolution(np.ones((3, 3), bool))
    op = Convolution(np.ones((3, 3)))
    assert op.to(torch.device("cpu")).psf.shape == (3, 3)


def good_psf() -> np.ndarray:
    return gaussian_psf(1.0, size=7).astype(np.float64) * 100


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda p: p.astype(bool), TypeError, "real numbers"),
        (lambda p: p.astype(complex), TypeError, "real numbers"),
        (lambda p: p.astype(object), TypeError, "real numbers"),
        (lambda p: np.where(p == p.max(), np.nan, p), ValueError, "NaN or infinite"),
        (lambda p: np.where(p == p.max(), np.inf, p), ValueError, "NaN or infinite"),
        (lambda p: p * 0, ValueError, "all zero"),
        (lambda p: -p, ValueError, "not positive"),
        (lambda p: p - 0.01 * p.max(), ValueError, "significantly negative"),
        (lambda p: p[None], None, None),  # (1, h, w): leading axis dropped, fine
        (lambda p: np.stack([p, p]), ValueError, "must be 2D"),
        (lambda p: p[3], ValueError, "must be 2D"),
        (lambda p: np.pad(p, ((0, 0), (0, 30))), ValueError, "larger than the image"),
        (lambda p: np.pad(p, ((0, 0), (0, 14))), ValueError, "off-centre"),
    ],
)
def test_check_psf_errors(make, error, words):
    psf = make(good_psf())
    before = psf.copy()
    if error is None:
        assert check_psf(psf, 2, (32, 32)).shape == (7, 7)
    else:
        with pytest.raises(error, match=words):
            check_psf(psf, 2, (32, 32))
    np.testing.assert_array_equal(psf, before)  # never modified


def test_check_psf_normalises_and_clips_tiny_negatives():
    psf = good_psf() - 1e-4 * good_psf().max()  # background slightly over-subtracted
    before = psf.copy()
    out = check_psf(psf, 2, (16, 16))
    assert out.dtype == np.float32 and out.min() >= 0 and np.isclose(out.sum(), 1)
    np.testing.assert_array_equal(psf, before)
    assert check_psf(np.arange(1, 17, dtype=np.uint16).reshape(4, 4), 2, (8, 8)).shape == (4, 4)
    # Volumes take a 2D PSF (checked against Y and X) or a 3D one.
    assert check_psf(good_psf(), 3, (3, 8, 8)).shape == (7, 7)
    assert check_psf(gaussian_psf(1.0, ndim=3), 3, (9, 9, 9)).ndim == 3
    with pytest.raises(ValueError, match="larger than the image"):
        check_psf(gaussian_psf(1.0, ndim=3), 3, (5, 16, 16))
    with pytest.raises(ValueError, match="image_shape"):
        check_psf(good_psf(), 2, (1, 16, 16))


def centre_of_mass(psf: np.ndarray) -> np.ndarray:
    grids = np.indices(psf.shape)
    return np.array([(g * psf).sum() for g in grids]) / psf.sum()


def test_gaussian_psf():
    psf = gaussian_psf(1.5)
    assert psf.shape == (13, 13) and psf.dtype == np.float32 and np.isclose(psf.sum(), 1)
    np.testing.assert_allclose(centre_of_mass(psf), [6, 6], atol=1e-5)
    np.testing.assert_allclose(psf, psf[::-1], atol=1e-8)
    np.testing.assert_allclose(psf, psf.T, atol=1e-8)
    vol = gaussian_psf((2.0, 1.0, 0.5))
    assert vol.shape == (17, 9, 5) and np.isclose(vol.sum(), 1)
    np.testing.assert_allclose(centre_of_mass(vol), [8, 4, 2], atol=1e-5)
    # Per-pixel integrals: the variance is σ² plus the pixel's 1/12.
    var = (psf.sum(0) * (np.arange(13) - 6) ** 2).sum()
    assert abs(var - (1.5**2 + 1 / 12)) < 1e-3
    assert gaussian_psf(1.0, size=(4, 6)).shape == (4, 6)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_psf(-1.0)


def test_widefield_psf_2d_is_the_airy_pattern():
    na, wavelength, pixel = 1.4, 0.52, 0.01  # µm: a fine grid, 23 px to the first dark ring
    psf = widefield_psf(na, wavelength, 1.515, pixel, size=81, oversample=1)
    assert psf.dtype == np.float32 and np.isclose(psf.sum(), 1)
    np.testing.assert_allclose(centre_of_mass(psf), [40, 40], atol=1e-4)
    np.testing.assert_allclose(psf, psf[::-1], atol=1e-9)
    np.testing.assert_allclose(psf, psf.T, atol=1e-9)
    profile = psf[40, 40:]
    first_min = np.flatnonzero((profile[1:-1] < profile[:-2]) & (profile[1:-1] < profile[2:]))[0]
    assert abs((first_min + 1) * pixel - 0.61 * wavelength / na) <= pixel
    v = 2 * np.pi / wavelength * na * np.arange(1, 41) * pixel
    np.testing.assert_allclose(profile[1:] / profile[0], (2 * j1(v) / v) ** 2, atol=1e-5)


def test_widefield_psf_3d():
    psf = widefield_psf(1.2, 0.6, 1.33, 0.1, size=25, z_step=0.3, nz=9)
    assert psf.shape == (9, 25, 25) and np.isclose(psf.sum(), 1)
    np.testing.assert_allclose(centre_of_mass(psf), [4, 12, 12], atol=1e-4)
    np.testing.assert_allclose(psf, psf[::-1], atol=1e-9)  # aberration-free: symmetric in z
    np.testing.assert_allclose(psf, psf[:, ::-1], atol=1e-9)
    assert psf[4].max() == psf.max()  # brightest in focus
    assert check_psf(psf, 3, (16, 64, 64)).shape == psf.shape
    default = widefield_psf(1.2, 0.6, 1.33, 0.1)
    assert default.ndim == 2 and default.shape[0] % 2 == 1
    with pytest.raises(ValueError, match="refractive_index"):
        widefield_psf(1.4, 0.5, 1.33, 0.1)
    with pytest.raises(ValueError, match="both z_step and nz"):
        widefield_psf(1.2, 0.5, 1.33, 0.1, z_step=0.2)


def test_blurred_cells_is_the_sharp_stack_through_the_camera():
    from napari_dip import samples

    observed, kernel, clean = samples.blurred_cells((3, 48, 48), sigma=2.0, photons=200, seed=4)
    again, _, _ = samples.blurred_cells((3, 48, 48), sigma=2.0, photons=200, seed=4)
    np.testing.assert_array_equal(observed, again)  # seeded
    assert observed.dtype == np.uint16 and observed.shape == clean.shape == (3, 48, 48)
    np.testing.assert_allclose(kernel, gaussian_psf(2.0))
    # the record is the clean stack blurred by that PSF, in the same camera units (gain 2,
    # offset 100), up to photon and read noise
    signal = (clean - 100.0) / 2.0
    expected = 100.0 + 2.0 * np.stack([ndimage.convolve(p, kernel, mode="reflect") for p in signal])
    residual = observed - expected
    assert abs(residual.mean()) < 0.5
    noise_sd = np.sqrt(4.0 * np.maximum(expected - 100.0, 0.0) / 2.0 + 4.0)  # gain·(counts) + read²
    assert 0.85 < np.std(residual / noise_sd) < 1.15
    assert float(clean.max()) == pytest.approx(100.0 + 2.0 * 200)  # the brightest pixel's photons
    with pytest.raises(ValueError, match="2D but the image is 3D"):
        samples.blur_and_count(np.ones((4, 8, 8)), kernel)
