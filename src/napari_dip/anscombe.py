"""The generalised Anscombe transform (GAT) for Poisson–Gaussian data, and its inverses.

The camera model is ``z = gain · Poisson(λ) + offset + N(0, read_noise²)``, all in image units
(``offset`` is the mean of the Gaussian part). :func:`gat` maps ``z`` to data whose noise is
close to N(0, 1), so a Gaussian denoiser (BM3D, …) can be used; the denoised result ``D``
estimates ``E[gat(z)]``, not ``gat(E[z])``, and the plain algebraic inverse of ``gat`` is biased
at low counts. :func:`inverse_unbiased` is the closed-form approximation of the exact unbiased
inverse of Mäkitalo & Foi (2013), which undoes that bias.

Everything is done in the unit-gain domain: ``z' = (z − offset) / gain`` is ``Poisson(λ) +
N(0, σ²)`` with ``σ = read_noise / gain``, and results are mapped back with ``gain · λ +
offset`` — the expected value of ``z``, in the input's units. Numpy only.

References
----------
M. Mäkitalo and A. Foi, "Optimal inversion of the generalized Anscombe transformation for
Poisson-Gaussian noise", IEEE Trans. Image Process. 22(1), 91–103, 2013.
J.-L. Starck, F. Murtagh and A. Bijaoui, *Image Processing and Data Analysis*, CUP, 1998.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gat", "inverse_algebraic", "inverse_unbiased"]

# gat of a zero count without read noise, 2·sqrt(3/8): the smallest value E[gat(z)] takes for
# pure Poisson data. Below it the closed form's negative powers of D blow up, so there the
# estimate is λ = 0 (the convention of the authors' reference code, which clips to 0).
_D_MIN = 2.0 * np.sqrt(3.0 / 8.0)
_SQRT_3_2 = np.sqrt(1.5)


def _check(gain: float, read_noise: float) -> None:
    if not gain > 0:
        raise ValueError(f"gain must be positive, got {gain!r}")
    if not read_noise >= 0:
        raise ValueError(f"read_noise must be >= 0, got {read_noise!r}")


def gat(
    z: np.ndarray, gain: float = 1.0, offset: float = 0.0, read_noise: float = 0.0
) -> np.ndarray:
    """Forward generalised Anscombe transform: noise variance ≈ 1 for Poisson–Gaussian data.

    ``2 · sqrt(max(z' + 3/8 + σ², 0))`` with ``z' = (z − offset) / gain`` and ``σ =
    read_noise / gain``, i.e. ``(2 / gain) · sqrt(max(gain·z + 3/8·gain² + read_noise² −
    gain·offset, 0))`` in the usual notation.

    Parameters
    ----------
    z : ndarray
        Observed values in image units (any shape, any real dtype).
    gain, offset, read_noise : float
        Image units per photon, mean of the Gaussian part, its standard deviation.

    Returns
    -------
    ndarray of float64
        The stabilised data, same shape.

    Raises
    ------
    ValueError
        ``gain`` not positive or ``read_noise`` negative.

    Examples
    --------
    Photon counts of mean 20 have a standard deviation of about 4.5; after the transform,
    close to 1:

    >>> import numpy as np
    >>> from napari_dip import anscombe
    >>> counts = np.random.default_rng(0).poisson(20.0, 100_000)
    >>> round(float(counts.std()), 1), round(float(anscombe.gat(counts).std()), 2)
    (4.5, 1.0)
    >>> anscombe.gat(np.array([100.0, 120.0]), gain=1.0, offset=100.0).round(3)
    array([1.225, 9.028])
    """
    _check(gain, read_noise)
    units = (np.asarray(z, dtype=np.float64) - offset) / gain
    sigma = read_noise / gain
    return 2.0 * np.sqrt(np.maximum(units + 0.375 + sigma**2, 0.0))


def inverse_algebraic(
    d: np.ndarray, gain: float = 1.0, offset: float = 0.0, read_noise: float = 0.0
) -> np.ndarray:
    """Algebraic inverse of :func:`gat`: ``gain · ((D/2)² − 3/8 − σ²) + offset``.

    Exact for ``gat`` of one value but biased when applied to a denoised ``D ≈ E[gat(z)]``
    (by about −1/4 photon at high counts and relatively much more at low ones); kept for
    comparison.

    Parameters
    ----------
    d : ndarray
        Stabilised data.
    gain, offset, read_noise : float
        The values given to :func:`gat`.

    Returns
    -------
    ndarray of float64
        In the original image units.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_dip import anscombe
    >>> z = np.array([100.0, 105.0, 120.0])
    >>> anscombe.inverse_algebraic(anscombe.gat(z, offset=100.0), offset=100.0)
    array([100., 105., 120.])
    """
    _check(gain, read_noise)
    d = np.asarray(d, dtype=np.float64)
    sigma = read_noise / gain
    return gain * ((d / 2.0) ** 2 - 0.375 - sigma**2) + offset


def inverse_unbiased(
    d: np.ndarray, gain: float = 1.0, offset: float = 0.0, read_noise: float = 0.0
) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of :func:`gat`.

    Maps ``D ≈ E[gat(z) | λ]`` (a denoised stabilised image) back to ``gain · λ + offset``.
    In the unit-gain domain (Mäkitalo & Foi 2013, eq. 19 less ``σ²``)::

        λ = D²/4 + sqrt(3/2)/(4D) − 11/(8D²) + 5·sqrt(3/2)/(8D³) − 1/8 − σ²,

    clipped at 0, and 0 where ``D < 2·sqrt(3/8)`` (below any expected value of pure Poisson
    data, where the negative powers would blow up). For large ``D`` it tends to the
    asymptotically unbiased ``D²/4 − 1/8 − σ²``.

    Parameters
    ----------
    d : ndarray
        The denoised, stabilised data.
    gain, offset, read_noise : float
        The values given to :func:`gat`.

    Returns
    -------
    ndarray of float64
        Estimated ``E[z] = gain · λ + offset``, in the original image units.

    Examples
    --------
    The mean of the stabilised counts (what a denoiser estimates) maps back to the mean
    count, where the algebraic inverse falls short:

    >>> import numpy as np
    >>> from napari_dip import anscombe
    >>> counts = np.random.default_rng(0).poisson(5.0, 100_000)
    >>> d = anscombe.gat(counts).mean()
    >>> unbiased, algebraic = anscombe.inverse_unbiased(d), anscombe.inverse_algebraic(d)
    >>> round(float(unbiased), 1), round(float(algebraic), 1)
    (5.0, 4.7)
    """
    _check(gain, read_noise)
    d = np.asarray(d, dtype=np.float64)
    sigma = read_noise / gain
    safe = np.maximum(d, _D_MIN)  # no division by ~0 where the result is 0 anyway
    lam = (
        safe**2 / 4.0
        + _SQRT_3_2 / (4.0 * safe)
        - 11.0 / (8.0 * safe**2)
        + 5.0 * _SQRT_3_2 / (8.0 * safe**3)
        - 0.125
        - sigma**2
    )
    lam = np.where(d < _D_MIN, 0.0, np.maximum(lam, 0.0))
    return gain * lam + offset
