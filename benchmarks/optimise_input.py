"""Benchmark: does optimising the network's input z reach the result in fewer steps? (issue 5)

    python benchmarks/optimise_input.py                       # every variant, camera, σ = 25
    python benchmarks/optimise_input.py --variants weights,both:0.01:0.02 --steps 500

DIP fits the weights θ of f_θ(z) with z fixed. The Deep Random Projector idea (Li et al.,
CVPR 2023) fits z instead, with the random weights frozen (only the BatchNorm scales and
shifts train) and a TV term, and reports the result in far fewer steps. Optimising z is
cheaper per step (no weight gradients) and z has a pixel-sized, direct hold on the output, so
the output changes fast; the question is whether it keeps DIP's quality. A variant is
``kind[:z_lr[:tv_weight]]`` with kind ``weights`` (plain DIP, the ``fast`` preset), ``input``
(z and the BatchNorm parameters; weights frozen) or ``both`` (weights and z together). Each
runs a fixed number of steps from the ``fast`` preset's network and input (seed 0), Adam at
the preset's lr for the weights, bfloat16 where the CPU has it, the preset's input
perturbation and exponential average of outputs; the PSNR of that average is taken every
``--every`` steps against the ground truth (evaluation only). The table gives the best PSNR,
its step, and the PSNR at a few steps.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from early_stopping import degrade, psnr

VARIANTS = (
    "weights",
    "input:0.1",
    "input:0.01",
    "input:0.1:0.005",
    "input:0.03:0.03",
    "both:0.1",
    "both:0.003",
    "both:0.01:0.02",
)
AT = (100, 200, 500, 1000)


def run_one(spec: str, task: str, image: str, size: int, steps: int, every: int) -> dict:
    import torch

    from napari_dip.engine import autocast_dtype, build_prior, get_preset
    from napari_dip.samples import grey_crop

    kind, *rest = spec.split(":")
    z_lr = float(rest[0]) if rest else 0.0
    tv = float(rest[1]) if len(rest) > 1 else 0.0
    if kind not in ("weights", "input", "both"):
        raise SystemExit(f"unknown variant kind {kind!r}; choose weights, input or both")
    preset = get_preset("fast")
    clean = grey_crop(image, size)
    observed, _, _, _ = degrade(task, clean)
    y = torch.from_numpy(observed.astype(np.float32) / 255)[None, None]
    settings = preset.task("denoise")
    cpu = torch.device("cpu")
    prior = build_prior(preset, (size, size), 1, perturb_std=0.0, seed=0, device=cpu)
    net, z = prior.net, prior.z.clone()
    groups = []
    if kind == "input":  # frozen random weights; BatchNorm's scale and shift still train
        for module in net.modules():
            trainable = isinstance(module, torch.nn.BatchNorm2d)
            for param in module.parameters(recurse=False):
                param.requires_grad_(trainable)
                if trainable:
                    groups.append({"params": [param], "lr": preset.lr})
    else:
        groups.append({"params": list(net.parameters()), "lr": preset.lr})
    if kind != "weights":
        z.requires_grad_(True)
        groups.append({"params": [z], "lr": z_lr})
    optimizer = torch.optim.Adam(groups)
    half = autocast_dtype(cpu, "auto")
    gen = torch.Generator().manual_seed(0)
    average = None
    curve: dict[int, float] = {}
    start = time.perf_counter()
    for step in range(1, steps + 1):
        optimizer.zero_grad(set_to_none=True)
        noise = torch.randn(z.shape, generator=gen) * settings.perturb_std
        with torch.autocast("cpu", dtype=half or torch.bfloat16, enabled=half is not None):
            out = net(z + noise)
        out = out.float()
        loss = torch.mean((out - y) ** 2)
        if tv:
            dy = (out[..., 1:, :] - out[..., :-1, :]).abs().mean()
            dx = (out[..., :, 1:] - out[..., :, :-1]).abs().mean()
            loss = loss + tv * (dy + dx)
        loss.backward()
        optimizer.step()
        out = out.detach()
        decay = min(preset.ema, (1 + step) / (10 + step))  # as the fit loop's warm-up
        average = out.clone() if average is None else average.mul_(decay).add_(out, alpha=1 - decay)
        if step % every == 0:
            curve[step] = psnr(clean, average[0, 0].numpy() * 255)
    seconds = time.perf_counter() - start
    best_step = max(curve, key=curve.get)
    return {
        "variant": spec,
        "best": curve[best_step],
        "best_step": best_step,
        "at": {s: curve.get(s) for s in AT},
        "last": curve[max(curve)],
        "s_per_step": seconds / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--task", default="denoise25")
    parser.add_argument("--image", default="camera")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"`{' '.join(['python', 'benchmarks/optimise_input.py', *sys.argv[1:]])}`: "
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.image} {args.size}×{args.size} grey, {args.task}, {args.steps} steps\n"
    )
    at = " | ".join(f"@ {s}" for s in AT)
    print(f"| variant | best PSNR | at step | {at} | last | s/step |")
    print("|---|---:|---:|" + "---:|" * len(AT) + "---:|---:|")
    for spec in args.variants.split(","):
        r = run_one(spec, args.task, args.image, args.size, args.steps, args.every)
        cells = " | ".join("–" if r["at"][s] is None else f"{r['at'][s]:.2f}" for s in AT)
        print(
            f"| {spec} | {r['best']:.2f} | {r['best_step']} | {cells} | {r['last']:.2f} | "
            f"{r['s_per_step']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
