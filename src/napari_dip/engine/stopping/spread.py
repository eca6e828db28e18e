"""How far a risk estimate may lie from the error it estimates.

SURE and the held-out pixels of self-validation estimate a result's mean squared error ``m``
from one noise realisation. Over ``N`` pixels with noise ``n`` of variance ``v`` the estimate
differs from ``m`` by, to first order, ``mean(n² − v) + 2·mean(n·(x − h))``: terms independent
from pixel to pixel, whose variance is ``(2·mean(v²) + 4·mean(v)·m) / N`` for Gaussian noise
(a good approximation for photon counts of a few or more). It is the floor on how well any
single-realisation estimate can know the error: large against a small error on a small image.
SURE's Monte-Carlo divergence (one probe ``b``) adds ``8·mean(v)·mean(d²) / N``, ``d = J s⊙b``
the pair's difference per unit probe (``bᵀAb`` has variance ``2‖A‖²``, ``A = S J S``): the
more the result follows the noise, the larger. Not included: a noise level read wrongly from
the image (a bias; give ``sigma`` instead).
"""

from __future__ import annotations

import math

__all__ = ["risk_std"]


def risk_std(
    variance: float, variance_sq: float, mse: float, samples: int, probe_sq: float = 0.0
) -> float | None:
    """The standard deviation of an unbiased squared-error estimate around the true error
    ``mse``, for ``samples`` pixels of noise of mean variance ``variance`` and mean squared
    variance ``variance_sq`` (all in the same units²), and ``probe_sq`` the ``mean(d²)`` of a
    Monte-Carlo divergence (0: none); None without pixels.

    Examples
    --------
    >>> round(risk_std(625.0, 625.0**2, 20.0, 128 * 128), 2)  # σ 25, 128², error 20
    7.12
    """
    if samples < 1 or not all(map(math.isfinite, (variance, variance_sq, mse, probe_sq))):
        return None
    total = 2 * variance_sq + 4 * variance * max(mse, 0.0) + 8 * variance * probe_sq
    return math.sqrt(max(0.0, total) / samples)
