"""Noise models: the data term ``E(A(x), y)`` of a :class:`~.problem.Problem`.

The engine works on ``y`` normalised to ``[0, 1]`` (values outside are allowed). A photon-count
model needs the photon scale, so it carries the affine map from that normalised value ``u`` to an
expected photon count, ``count = offset + scale · u`` (the top level derives ``scale`` and
``offset`` from the image's normalisation and the camera's gain and offset). The network output
``x`` maps to the expected count (the Poisson rate) the same way.

The photon-count losses are Poisson *deviances* per pixel, averaged (half the classic deviance):
the negative log-likelihood minus its value at a perfect fit. Their gradient is the NLL's, but
they are ≥ 0 and 0 when the fit is exact, like the squared error, so the fit loop's rollback
guard (a loss ratio) means the same thing for every model.
"""

from __future__ import annotations

import math

import torch

__all__ = ["Gaussian", "NoiseModel", "Poisson", "PoissonGaussian", "make_noise_model"]

RATE_FLOOR = 1e-6  # expected counts below this are raised to it: no log(0), finite gradients


class NoiseModel:
    """Base class: ``model(prediction, y)`` is the scalar data term to minimise, the mean of
    the per-pixel terms :meth:`terms`; :meth:`variance` is an observation's variance given its
    expected value (what a held-out pixel's squared error has on top of the estimate's)."""

    name = "noise model"

    def terms(self, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.mean(self.terms(prediction, y))

    def variance(self, y: torch.Tensor) -> torch.Tensor | None:
        """An unbiased estimate of each observation's noise variance (normalised units), or
        None where the model does not know it (Gaussian: the level is estimated elsewhere)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Gaussian(NoiseModel):
    """Additive white Gaussian noise: the mean squared error (DIP's original data term).

    ``sigma`` (normalised units) is the noise level when it is known; None (default): rules
    that need it estimate it from the image."""

    name = "gaussian"

    def __init__(self, sigma: float | None = None):
        self.sigma = None if sigma is None else float(sigma)

    def variance(self, y: torch.Tensor) -> torch.Tensor | None:
        return None if self.sigma is None else torch.full_like(y, self.sigma**2)

    def __repr__(self) -> str:
        return "Gaussian()" if self.sigma is None else f"Gaussian(sigma={self.sigma:g})"

    def terms(self, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (prediction - y) ** 2


class Poisson(NoiseModel):
    """Photon shot noise: observed counts ``k ~ Poisson(λ)``.

    Parameters
    ----------
    scale, offset : float
        ``count = offset + scale · value`` maps a normalised value (observation or network
        output) to photons. ``scale`` must be positive.
    floor : float
        Smallest expected count: the rate is clamped to it, so the log never sees 0.

    Notes
    -----
    Observed counts below 0 (values under the camera offset) are taken as 0.
    """

    name = "poisson"

    def __init__(self, scale: float, offset: float = 0.0, floor: float = RATE_FLOOR):
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        if not math.isfinite(offset):
            raise ValueError(f"offset must be finite, got {offset!r}")
        if not floor > 0:
            raise ValueError(f"floor must be positive, got {floor!r}")
        self.scale, self.offset, self.floor = float(scale), float(offset), float(floor)

    def _shift(self) -> float:
        return self.offset

    def rate(self, prediction: torch.Tensor) -> torch.Tensor:
        """Expected counts ``λ`` for a normalised prediction, at least ``floor``."""
        return torch.clamp(self._shift() + self.scale * prediction, min=self.floor)

    def counts(self, y: torch.Tensor) -> torch.Tensor:
        """Observed counts ``k`` for a normalised observation (negative ones as 0)."""
        return torch.clamp(self._shift() + self.scale * y, min=0.0)

    def nll(self, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood, ``λ − k log λ + log k!`` (the model's exact one)."""
        lam, k = self.rate(prediction), self.counts(y)
        return torch.mean(lam - torch.xlogy(k, lam) + torch.lgamma(k + 1))

    def terms(self, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Half deviances, ``λ − k + k log(k / λ)``: the NLL less its minimum over λ."""
        lam, k = self.rate(prediction), self.counts(y)
        return lam - k + torch.xlogy(k, k) - torch.xlogy(k, lam)

    def variance(self, y: torch.Tensor) -> torch.Tensor:
        """``Var(y) = E[count] / scale²``, estimated by the observed count itself (unbiased);
        read noise adds its variance in :class:`PoissonGaussian`."""
        return torch.clamp(self._shift() + self.scale * y, min=0.0) / self.scale**2

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale:g}, offset={self.offset:g})"


class PoissonGaussian(Poisson):
    """Shot noise plus Gaussian read noise: ``k = Poisson(λ) + N(0, read_var)`` (in photons).

    Its exact likelihood is a sum over all photon counts; we use the *shifted Poisson*
    approximation (Snyder et al. 1993): ``k + read_var ~ Poisson(λ + read_var)``, which has the
    right mean and variance (``λ + read_var``), stays convex in ``λ`` and well defined at low
    counts where a Gaussian approximation is poor, and is plain Poisson when ``read_var`` is 0.
    Shifted observations below 0 (strong negative read noise on a dark pixel) are taken as 0.

    Only ``offset + read_var`` enters the loss: that sum is also all that a mean–variance fit of
    the noise can identify (see :func:`napari_dip._noise.estimate_noise`).

    Parameters
    ----------
    scale, offset : float
        ``count = offset + scale · value``, as in :class:`Poisson`.
    read_var : float
        Variance of the read noise, in photons² (≥ 0).
    floor : float
        Smallest shifted rate.
    """

    name = "poisson-gaussian"

    def __init__(
        self, scale: float, offset: float = 0.0, read_var: float = 0.0, floor: float = RATE_FLOOR
    ):
        super().__init__(scale, offset, floor)
        if not (math.isfinite(read_var) and read_var >= 0):
            raise ValueError(f"read_var must be a number >= 0, got {read_var!r}")
        self.read_var = float(read_var)

    def _shift(self) -> float:
        return self.offset + self.read_var

    def __repr__(self) -> str:
        return (
            f"PoissonGaussian(scale={self.scale:g}, offset={self.offset:g}, "
            f"read_var={self.read_var:g})"
        )


def make_noise_model(
    noise: str | NoiseModel = "gaussian",
    scale: float | None = None,
    offset: float = 0.0,
    read_var: float = 0.0,
    sigma: float | None = None,
) -> NoiseModel:
    """A model by name (``"gaussian"``, ``"poisson"``, ``"poisson-gaussian"``), or ``noise``
    itself if it already is one. The photon-count models need ``scale``; ``sigma`` is the
    Gaussian model's known level (normalised units; None: estimated where needed).

    Examples
    --------
    >>> make_noise_model("gaussian")
    Gaussian()
    >>> make_noise_model("poisson-gaussian", scale=100.0, read_var=4.0)
    PoissonGaussian(scale=100, offset=0, read_var=4)
    """
    if isinstance(noise, NoiseModel):
        return noise
    if noise == "gaussian":
        return Gaussian(sigma)
    if noise in ("poisson", "poisson-gaussian"):
        if scale is None:
            raise ValueError(f"noise={noise!r} needs the photon scale (counts per unit value)")
        if noise == "poisson":
            return Poisson(scale, offset)
        return PoissonGaussian(scale, offset, read_var)
    raise ValueError(
        f"unknown noise model {noise!r}; choose 'gaussian', 'poisson' or 'poisson-gaussian'"
    )
