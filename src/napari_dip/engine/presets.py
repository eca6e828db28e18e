"""Named configurations: ``paper`` (the published settings), ``fast`` (light, for CPUs) and
variants with the spectral-bias controls of Shi et al. (IJCV 2022)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

import torch

from .networks import DecoderConfig, NetworkConfig, SkipConfig
from .priors import Prior, meshgrid_input, noise_input

__all__ = ["PRESETS", "Preset", "TaskSettings", "build_prior", "get_preset"]

TASKS = ("denoise", "inpaint", "super_resolve")


@dataclass(frozen=True)
class TaskSettings:
    """What changes with the task: step budget and input perturbation."""

    steps: int
    perturb_std: float


@dataclass(frozen=True)
class Preset:
    """A network, its input and the optimiser settings that go with it."""

    name: str
    network: NetworkConfig
    tasks: dict[str, TaskSettings]
    input_kind: str = "noise"  # "noise" or "meshgrid"
    input_channels: int = 32
    lr: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's moment decays
    ema: float = 0.99
    description: str = field(default="", compare=False)

    def task(self, task: str) -> TaskSettings:
        try:
            return self.tasks[task]
        except KeyError:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}") from None


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        network=SkipConfig(),
        tasks={
            "denoise": TaskSettings(steps=3000, perturb_std=1 / 30),
            "inpaint": TaskSettings(steps=5000, perturb_std=0.03),
            "super_resolve": TaskSettings(steps=2000, perturb_std=0.03),
        },
        description="Ulyanov et al. 2018: skip net, 5 scales × 128 channels, 2.2 M parameters",
    ),
    "fast": Preset(
        name="fast",
        network=SkipConfig(
            down=(16, 32, 64, 64, 128),
            up=(16, 32, 64, 64, 128),
            skip=(4, 4, 4, 4, 4),
        ),
        tasks={
            "denoise": TaskSettings(steps=1000, perturb_std=1 / 30),
            "inpaint": TaskSettings(steps=2000, perturb_std=0.03),
            "super_resolve": TaskSettings(steps=2000, perturb_std=0.03),
        },
        # Adam's moments 0.8 / 0.9 instead of the published 0.9 / 0.999: the same best PSNR in
        # ~2.5× fewer steps (σ = 25 camera, 256²: 28.26 dB at step 1020 against 2470;
        # benchmarks/optimiser.py), but a narrower peak, which ES-WMV alone often misses
        # (σ = 15: 1.7–2.3 dB; photon-limited data: never stops); stop="auto" pairs it with
        # the discrepancy rule, which catches it (benchmarks/discrepancy.py, noise_models.py).
        betas=(0.8, 0.9),
        description="narrow full-resolution layers: about 1/20 of the paper's cost per step",
    ),
}


_FAST_NET = SkipConfig(down=(16, 32, 64, 64, 128), up=(16, 32, 64, 64, 128), skip=(4, 4, 4, 4, 4))


# λ 1.0: the smoothed PSNR stayed within 0.6 dB of its peak up to 3× the peak's step at σ = 50
# (fast: 1.8–2.4 dB; λ 1.2 and 1.4: 1.9 and 2.8 dB), and within 0.2 dB of it as far as the
# σ = 25 and 15 runs went; benchmarks/lipschitz_decay.py. The price is speed: the peak comes
# at 2300–3600 steps for σ = 50 and 9800–15300 for σ = 25 (128×128), hence the budget.
PRESETS["fast-lipschitz"] = Preset(
    name="fast-lipschitz",
    network=replace(_FAST_NET, lipschitz=1.0, norm="mean"),
    tasks={
        "denoise": TaskSettings(steps=8000, perturb_std=1 / 30),
        "inpaint": TaskSettings(steps=8000, perturb_std=0.03),
        "super_resolve": TaskSettings(steps=8000, perturb_std=0.03),
    },
    description="fast with Lipschitz-bounded convolutions (λ 1.0) and mean-only BatchNorm: "
    "the result plateaus instead of decaying, but peaks 4–11× later",
)
PRESETS["fast-gaussian"] = Preset(
    name="fast-gaussian",
    network=replace(
        _FAST_NET,
        lipschitz=1.8,
        norm="mean",
        upsample_mode="gaussian",
        upsample_sigma=(0.1, 0.1, 0.1, 0.5, 0.5),
    ),
    tasks=dict(PRESETS["fast"].tasks),
    description="experimental: fast with Lipschitz bound λ 1.8, mean-only BatchNorm and "
    "Gaussian upsampling (σ 0.1–0.5); peaks in about half the steps, a little lower, then "
    "falls fast, and the automatic stop often misses that peak",
)
PRESETS["decoder"] = Preset(
    name="decoder",
    network=DecoderConfig(),
    tasks={
        "denoise": TaskSettings(steps=3000, perturb_std=1 / 30),
        "inpaint": TaskSettings(steps=5000, perturb_std=0.03),
        "super_resolve": TaskSettings(steps=3000, perturb_std=0.03),
    },
    lr=1e-3,
    description="Shi et al. 2022: decoder from 1/32 size, Lipschitz λ 1.8, Gaussian upsampling",
)


def get_preset(name: str | Preset) -> Preset:
    """The preset named ``name`` (a key of :data:`PRESETS`), or ``name`` itself if it is one.

    Examples
    --------
    >>> preset = get_preset("fast")
    >>> preset.name, preset.task("denoise").steps, preset.network.multiple
    ('fast', 1000, 32)
    """
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


_BUILD_LOCK = threading.Lock()  # see build_prior


def build_prior(
    preset: Preset,
    shape: tuple[int, int],
    out_channels: int,
    *,
    perturb_std: float,
    seed: int,
    device: torch.device,
) -> Prior:
    """Make the network and its input deterministically from ``seed``.

    ``shape`` is the network's output shape (sides a multiple of ``preset.network.multiple``);
    the input ``z`` gets ``preset.network.input_shape(shape)``.

    Weights and ``z`` are drawn on the CPU under a private RNG state, then moved: the same seed
    gives the same starting point on every device, and the caller's generators (CPU, CUDA,
    MPS) are untouched: only the CPU generator is seeded, inside a fork that restores it.
    Thread-safe: the layers draw from torch's global generator, so builds take turns (tiles
    fitted side by side build their networks on their own threads).

    Examples
    --------
    >>> import torch
    >>> cpu = torch.device("cpu")
    >>> prior = build_prior(get_preset("fast"), (64, 64), 1, perturb_std=0.0, seed=0, device=cpu)
    >>> prior.z.shape
    torch.Size([1, 32, 64, 64])
    >>> again = build_prior(get_preset("fast"), (64, 64), 1, perturb_std=0.0, seed=0, device=cpu)
    >>> torch.equal(prior.z, again.z)  # the same seed, the same start
    True
    """
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # not torch.manual_seed: all devices
        gen = torch.Generator().manual_seed(seed)
        z_shape = preset.network.input_shape(shape)  # the decoder's input is smaller
        if preset.input_kind == "meshgrid":
            z = meshgrid_input(z_shape)
        else:
            z = noise_input(preset.input_channels, z_shape, gen)
        net = preset.network.build(z.shape[1], out_channels)
    return Prior(net, z, perturb_std).to(device)
