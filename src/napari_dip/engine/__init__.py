"""The DIP engine: torch only, no Qt or napari. Problem + Prior + fit loop."""

from .blur import Convolution
from .device import PRECISIONS, autocast_dtype, available_devices, resolve_device
from .fit import FitSettings, FitState, Snapshot, fit, seconds_left
from .layers import GaussianUpsample, LipschitzBound, MeanOnlyBatchNorm2d, bound_lipschitz
from .networks import DecoderConfig, DecoderNet, SkipConfig, SkipNet
from .noise import Gaussian, NoiseModel, Poisson, PoissonGaussian, make_noise_model
from .operators import Composition, Downsample, Identity, Mask, Operator
from .presets import PRESETS, Preset, TaskSettings, build_prior, get_preset
from .priors import Members, Prior, meshgrid_input, noise_input
from .problem import Problem, holdout_mask, total_variation
from .stopping import (
    Discrepancy,
    ExponentialVariance,
    FirstOf,
    FixedBudget,
    Panel,
    SelfValidation,
    SharpnessRatio,
    StopRule,
    Sure,
    WindowedVariance,
    make_stop_rule,
    noise_level,
)

__all__ = [
    "PRECISIONS",
    "PRESETS",
    "Composition",
    "Convolution",
    "DecoderConfig",
    "DecoderNet",
    "Discrepancy",
    "Downsample",
    "ExponentialVariance",
    "FirstOf",
    "FitSettings",
    "FitState",
    "FixedBudget",
    "Gaussian",
    "GaussianUpsample",
    "Identity",
    "LipschitzBound",
    "Mask",
    "MeanOnlyBatchNorm2d",
    "Members",
    "NoiseModel",
    "Operator",
    "Panel",
    "Poisson",
    "PoissonGaussian",
    "Preset",
    "Prior",
    "Problem",
    "SelfValidation",
    "SharpnessRatio",
    "SkipConfig",
    "SkipNet",
    "Snapshot",
    "StopRule",
    "Sure",
    "TaskSettings",
    "WindowedVariance",
    "autocast_dtype",
    "available_devices",
    "bound_lipschitz",
    "build_prior",
    "fit",
    "get_preset",
    "holdout_mask",
    "make_noise_model",
    "make_stop_rule",
    "meshgrid_input",
    "noise_input",
    "noise_level",
    "resolve_device",
    "seconds_left",
    "total_variation",
]
