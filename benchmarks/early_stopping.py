"""Benchmark: automatic early stopping against the oracle (ground-truth) best, per rule.

    python benchmarks/early_stopping.py                                  # everything, 128×128
    python benchmarks/early_stopping.py --presets fast,fast-lipschitz    # some presets
    python benchmarks/early_stopping.py --size 64 --max-steps 300 --tasks denoise25 \\
        --images camera --presets fast                                   # smoke test
    python benchmarks/early_stopping.py --presets fast@0.8:0.9           # other Adam betas
    python benchmarks/early_stopping.py --presets paper --size 512 --tasks denoise25 \\
        --images camera --every 50 --progress run.jsonl --checkpoint run.pt  # hours: the same
                                                           # command again continues the run

For every (task, image, preset) the fit runs **once**, for ``--budget-factor`` × the preset's
step count (or ``--max-steps``), with *all* rules watching the same run through a
:class:`~napari_dip.engine.Panel` (a rule only watches: when it would stop, it freezes its
choice and the run goes on for the others). Every ``--every`` steps the raw output and the
smoothed average are scored against the ground truth (evaluation only): the oracle is the best
of those. Per rule: PSNR of its chosen estimate, the oracle PSNR, the gap, the steps where each
happened, the wall time to each, and whether the chosen estimate is worse than the input
(noisy image; mean-filled holes; bicubic upsampling). ``fixed budget`` is the plain run: the
smoothed output at the preset's step count. PSNR-vs-step curves (and every rule's score curve)
go to ``--curves`` (JSON).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import platform
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np

TASKS = {
    "denoise15": ("denoise", {"sigma": 15}),
    "denoise25": ("denoise", {"sigma": 25}),
    "denoise50": ("denoise", {"sigma": 50}),
    "inpaint": ("inpaint", {"fraction": 0.5}),
    "sr4": ("super_resolve", {"factor": 4}),
}
GROUPS = {"denoise15": "denoise", "denoise25": "denoise", "denoise50": "denoise"}


def rules() -> dict:
    """The rules (and variants, to pick defaults) that watch every run."""
    from napari_dip.engine import (
        Discrepancy,
        ExponentialVariance,
        FirstOf,
        SharpnessRatio,
        WindowedVariance,
        make_stop_rule,
    )

    return {
        "auto": make_stop_rule("auto"),  # what stop="auto" is now: wmv + discrepancy
        "discrepancy": make_stop_rule("discrepancy"),
        "wmv + discrepancy lag 0": FirstOf([make_stop_rule("wmv"), Discrepancy(lag=0.0)]),
        "wmv + discrepancy lag 0.2": FirstOf([make_stop_rule("wmv"), Discrepancy(lag=0.2)]),
        "wmv (default)": WindowedVariance(),
        "wmv P=150": WindowedVariance(patience=150),
        "wmv P=300": WindowedVariance(patience=300),
        "wmv burn-in 400": WindowedVariance(burn_in=400),
        "wmv burn-in 400 tol 5%": WindowedVariance(burn_in=400, tolerance=0.05),
        "wmv P=1000 raw (paper)": WindowedVariance(patience=1000, keep="estimate"),
        "wmv raw": WindowedVariance(keep="estimate"),
        "emv": ExponentialVariance(),
        "sharpness": SharpnessRatio(),
        "sharpness ε=0.002": SharpnessRatio(eps=0.002),
    }


def preset_of(spec: str):
    """A preset by name, or ``name@beta1:beta2`` for it with other Adam moment decays."""
    from dataclasses import replace

    from napari_dip.engine import get_preset

    name, _, betas = spec.partition("@")
    preset = get_preset(name)
    if betas:
        b1, b2 = (float(b) for b in betas.split(":"))
        preset = replace(preset, betas=(b1, b2))
    return preset


def degrade(task: str, clean: np.ndarray) -> tuple[np.ndarray, dict, np.ndarray, str]:
    """Observation, restore_steps options, the input-as-a-result baseline and its name."""
    import torch

    from napari_dip.samples import degrade_resolution

    kind, params = TASKS[task]
    rng = np.random.default_rng(0)
    if kind == "denoise":
        noise = rng.normal(0, params["sigma"], clean.shape)
        observed = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
        return observed, {}, observed.astype(np.float64), "noisy"
    if kind == "inpaint":
        missing = rng.random(clean.shape) < params["fraction"]
        observed = clean.copy()
        observed[missing] = 0
        baseline = observed.astype(np.float64)
        baseline[missing] = clean[~missing].mean()
        return observed, {"mask": missing}, baseline, "mean fill"
    factor = params["factor"]
    observed = degrade_resolution(clean, factor)
    bicubic = torch.nn.functional.interpolate(
        torch.from_numpy(observed)[None, None],
        scale_factor=factor,
        mode="bicubic",
        align_corners=False,
    )[0, 0]
    return observed, {"factor": factor}, bicubic.clamp(0, 255).numpy(), "bicubic"


def psnr(truth: np.ndarray, x: np.ndarray) -> float:
    mse = float(np.mean((truth.astype(np.float64) - np.clip(x, 0, 255)) ** 2))
    return 10 * math.log10(255**2 / mse) if mse > 0 else math.inf


def run_one(
    task: str,
    image: str,
    preset: str,
    size: int,
    max_steps: int,
    every: int,
    device: str,
    precision: str = "auto",
    progress: Path | None = None,
    checkpoint: Path | None = None,
) -> tuple[list[dict], dict]:
    """One fit, all rules watching. Returns the table rows and the curves; with ``progress``,
    each sample is also appended to that file as a JSON line as the run goes, so a long run
    stopped early (the paper network at 512² takes hours here) still leaves its curve.

    With ``checkpoint`` (and ``progress``) the whole run is saved there at every sample and,
    if the file exists, continued from it, its earlier samples read back from ``progress``:
    a run longer than one sitting. No rule watches such a run (a rule's history is not saved),
    so its rows are the fixed budget's only; the curve is what it is for."""
    from napari_dip import restore_steps
    from napari_dip._arrays import from_unit, prepare_image, prepare_mask
    from napari_dip.engine import Panel
    from napari_dip.samples import grey_crop

    clean = grey_crop(image, size)
    observed, options, baseline, baseline_name = degrade(task, clean)
    kind = TASKS[task][0]
    known = prepare_mask(options["mask"], observed.shape, None) if "mask" in options else None
    _, layout = prepare_image(observed, None, known)  # how the engine's [0, 1] maps back
    watchers = rules() if checkpoint is None else {}
    panel = Panel(watchers.values()) if watchers else None
    curve: dict[str, list] = {"step": [], "psnr_estimate": [], "psnr_average": [], "loss": []}
    elapsed: dict[int, float] = {0: 0.0}
    state = None
    if checkpoint is not None:
        state = resume(checkpoint, progress, (task, image, preset), curve, elapsed)
    start = time.perf_counter()
    for snap in restore_steps(
        observed,
        task=kind,  # type: ignore[arg-type]
        preset=preset_of(preset),
        steps=max_steps,
        stop=panel,
        update_every=every,
        device=device,
        precision=precision,
        tile=None,  # one fit of the whole image: the stop rules watch a single run
        _fit_state=state,
        **options,
    ):
        curve["step"].append(snap.step)
        curve["psnr_estimate"].append(psnr(clean, snap.estimate))
        curve["psnr_average"].append(psnr(clean, snap.average))
        curve["loss"].append(snap.loss)
        elapsed[snap.step] = snap.elapsed
        if progress is not None:
            sample = {k: v[-1] for k, v in curve.items()} | {"seconds": snap.elapsed}
            with progress.open("a") as out:
                out.write(json.dumps({"task": task, "image": image, "preset": preset} | sample))
                out.write("\n")
        if checkpoint is not None:
            save_state(state, checkpoint)
    steps = curve["step"]
    total = elapsed[steps[-1]] if state is not None else time.perf_counter() - start

    def seconds_at(step: int) -> float:  # snapshots every `every` steps; rules check every 10
        known_steps = [s for s in elapsed if s <= step]
        base = max(known_steps)
        rate = elapsed[steps[-1]] / steps[-1]
        return elapsed[base] + (step - base) * rate

    both = [
        (p, s, stream)
        for stream in ("estimate", "average")
        for s, p in zip(steps, curve[f"psnr_{stream}"], strict=True)
    ]
    oracle, oracle_step, oracle_stream = max(both)
    input_psnr = psnr(clean, baseline)
    rows = []
    budget_step = min(preset_of(preset).task(kind).steps, steps[-1])
    budget_psnr = curve["psnr_average"][steps.index(budget_step)] if budget_step in steps else None
    common = {
        "task": task,
        "image": image,
        "preset": preset,
        "oracle": oracle,
        "oracle_step": oracle_step,
        "oracle_stream": oracle_stream,
        "oracle_s": seconds_at(oracle_step),
        "input_psnr": input_psnr,
        "input": baseline_name,
    }
    if budget_psnr is not None:
        rows.append(
            common
            | {
                "rule": "fixed budget",
                "psnr": budget_psnr,
                "chosen_step": budget_step,
                "stop_step": budget_step,
                "stop_s": seconds_at(budget_step),
                "reason": "step budget reached",
            }
        )
    for name, rule in watchers.items():
        best = rule.best
        if best is None:
            continue
        chosen = from_unit(best.to("cpu").float().numpy(), layout)
        stop_step = rule.stop_step or steps[-1]
        rows.append(
            common
            | {
                "rule": name,
                "psnr": psnr(clean, chosen),
                "chosen_step": rule.best_step,
                "stop_step": stop_step,
                "stop_s": seconds_at(stop_step),
                "reason": rule.reason or "never triggered (ran to the end)",
            }
        )
    for row in rows:
        row["gap"] = row["oracle"] - row["psnr"]
        row["worse_than_input"] = row["psnr"] < row["input_psnr"]
    curves = {
        "task": task,
        "image": image,
        "preset": preset,
        "size": size,
        "seconds": total,
        **curve,
        "scores": {  # sampled like the PSNR curves
            name: [(s, v) for s, v in rule.scores if s % every == 0]
            for name, rule in watchers.items()
        },
        "stops": {name: [rule.best_step, rule.stop_step] for name, rule in watchers.items()},
    }
    return rows, curves


def resume(
    checkpoint: Path,
    progress: Path | None,
    key: tuple[str, str, str],
    curve: dict[str, list],
    elapsed: dict[int, float],
):
    """The run saved in ``checkpoint`` (a fresh state if there is none yet), with its samples
    up to the saved step put back into ``curve`` and ``elapsed`` from ``progress``."""
    import torch

    from napari_dip.engine import FitState

    if progress is None:
        raise SystemExit("--checkpoint needs --progress: the earlier samples are read back there")
    if not checkpoint.exists():
        return FitState()
    state = FitState(**torch.load(checkpoint, weights_only=True))
    samples = {}
    for line in progress.read_text().splitlines():
        sample = json.loads(line)
        if (sample["task"], sample["image"], sample["preset"]) == key:
            samples[sample["step"]] = sample  # the last one written for a step wins
    for step in sorted(s for s in samples if s <= state.step):
        for name in curve:
            curve[name].append(samples[step][name])
        elapsed[step] = samples[step]["seconds"]
    if not curve["step"] or curve["step"][-1] != state.step:
        raise SystemExit(f"{progress} has no sample at the checkpoint's step {state.step}")
    print(f"continuing from step {state.step} ({checkpoint})", file=sys.stderr, flush=True)
    return state


def save_state(state, checkpoint: Path) -> None:
    """Write the run's state so that a crash while writing leaves the previous one."""
    import torch

    partial = checkpoint.with_name(checkpoint.name + ".partial")
    torch.save(vars(state), partial)
    partial.replace(checkpoint)


def print_tables(rows: list[dict]) -> None:
    print(
        "| task | image | preset | rule | PSNR chosen | oracle | gap | chosen step | stop step "
        "| oracle step | s to stop | s to oracle | input PSNR | worse than input |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['task']} | {r['image']} | {r['preset']} | {r['rule']} | {r['psnr']:.2f} | "
            f"{r['oracle']:.2f} | {r['gap']:.2f} | {r['chosen_step']} | {r['stop_step']} | "
            f"{r['oracle_step']} ({r['oracle_stream'][:3]}) | {r['stop_s']:.1f} | "
            f"{r['oracle_s']:.1f} | {r['input_psnr']:.2f} ({r['input']}) | "
            f"{'**yes**' if r['worse_than_input'] else 'no'} |"
        )
    print("\nMean gap to the oracle (dB) per task group; in brackets: runs worse than the input\n")
    groups = sorted({GROUPS.get(r["task"], r["task"]) for r in rows})
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    names = list(dict.fromkeys(r["rule"] for r in rows))
    print("| preset | rule | " + " | ".join(groups) + " |")
    print("|---|---|" + "---:|" * len(groups))
    for preset in presets:
        for name in names:
            cells = []
            for group in groups:
                sel = [
                    r
                    for r in rows
                    if r["preset"] == preset
                    and r["rule"] == name
                    and GROUPS.get(r["task"], r["task"]) == group
                ]
                if not sel:
                    cells.append("–")
                    continue
                gap = sum(r["gap"] for r in sel) / len(sel)
                worse = sum(r["worse_than_input"] for r in sel)
                cells.append(f"{gap:.2f}" + (f" ({worse})" if worse else ""))
            print(f"| {preset} | {name} | " + " | ".join(cells) + " |")


def _recorded_rule(
    curve: list, burn_in: int, tolerance: float, patience: int = 600
) -> tuple[int, int | None]:
    """The engine's ES-WMV (its own minimum tracking, burn-in, tolerance and patience) fed a
    recorded variance curve instead of images; returns its chosen step and its stop step
    (None: it had not stopped by the end of the record)."""
    import torch

    from napari_dip.engine import WindowedVariance

    recorded = dict(curve)

    class Recorded(WindowedVariance):
        def _observe(self, step, estimate, keep):  # type: ignore[override]
            score = torch.tensor(recorded[step], dtype=torch.float64)
            self._track(step, score, keep)
            return score

    rule = Recorded(burn_in=burn_in, tolerance=tolerance, patience=patience)
    for step, _ in curve:  # recorded every `--every` steps; the rule checks every 10
        marker = torch.tensor(float(step))
        rule.observe(step, marker, marker)
        if step % rule.check_every == 0 and rule.check(step):
            break
    return rule.best_step, rule.stop_step


def replay(
    paths: list[Path], tolerances: list[float], burn_ins: list[int], patiences: list[int]
) -> None:
    """Re-decide ES-WMV from recorded runs: the windowed variance (sampled every ``--every``
    steps) fed to the rule with each burn-in, relative tolerance and patience, and the
    smoothed PSNR at the step it chooses. Offline and exact up to the sampling: a variant is
    judged on every recorded run at once. Every ES-WMV rule of a run scores the same variance
    and records it until it stops; the longest record is used, and a replay that needs steps
    beyond it is marked (the run is then left out of the means)."""
    by_key = {}
    for path in paths:  # a run recorded twice: the later file's
        text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text()
        for run in json.loads(text)["runs"]:
            by_key[run["task"], run["image"], run["preset"], run["size"]] = run
    runs = list(by_key.values())
    print(f"replayed from {', '.join(map(str, paths))}\n")
    print(
        "| burn-in | tolerance | patience | task | image | preset | size | chosen PSNR | oracle "
        "| gap | chosen step | stop step |"
    )
    print("|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|")
    means = []
    for burn_in, tol, patience in product(burn_ins, tolerances, patiences):
        gaps: dict[str, list[float]] = {}
        stops: list[int] = []
        for run in runs:
            psnrs = dict(zip(run["step"], run["psnr_average"], strict=True))
            oracle = max(run["psnr_average"] + run["psnr_estimate"])
            curve = max((v for k, v in run["scores"].items() if k.startswith("wmv")), key=len)
            chosen, stop = _recorded_rule(curve, burn_in, tol, patience)
            if stop is None and curve[-1][0] >= run["step"][-1]:
                stop = run["step"][-1]  # ran to the end of the run: the step ceiling
            gap = oracle - psnrs[chosen]
            if stop is not None:
                gaps.setdefault(GROUPS.get(run["task"], run["task"]), []).append(gap)
                stops.append(stop)
            print(
                f"| {burn_in} | {tol:g} | {patience} | {run['task']} | {run['image']} | "
                f"{run['preset']} | {run['size']} | "
                f"{psnrs[chosen]:.2f} | {oracle:.2f} | {gap:.2f} | {chosen} | "
                f"{stop or f'> {curve[-1][0]} (record ends)'} |"
            )
        groups = {k: (float(np.mean(v)), len(v), max(v)) for k, v in gaps.items()}
        means.append((burn_in, tol, patience, groups, float(np.mean(stops))))
    print("\nMean gap (dB) per task group: runs, worst gap; mean stop step\n")
    for burn_in, tol, patience, groups, stop in means:
        cells = ", ".join(
            f"{k} {m:.2f} ({n} runs, worst {w:.2f})" for k, (m, n, w) in groups.items()
        )
        print(
            f"- burn-in {burn_in}, tolerance {tol:g}, patience {patience}: {cells}; "
            f"mean stop step {stop:.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"of {', '.join(TASKS)}")
    parser.add_argument("--images", default="camera,astronaut")
    parser.add_argument("--presets", default=None, help="default: every preset in PRESETS")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument(
        "--budget-factor",
        type=float,
        default=3.0,
        help="run this many times the preset's step count (default 3)",
    )
    parser.add_argument("--max-steps", type=int, default=None, help="override the run length")
    parser.add_argument("--every", type=int, default=10, help="steps between PSNR samples")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--curves", type=Path, default=Path("early_stopping_curves.json"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--progress", type=Path, default=None, help="append every sample here as a JSON line"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="save the run here at every sample and continue it from there (one run; "
        "needs --progress; no rules watch)",
    )
    parser.add_argument("--precision", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument(
        "--replay", type=Path, nargs="+", help="re-decide ES-WMV on these recorded --curves"
    )
    parser.add_argument(
        "--tolerance", default="0,0.02,0.05,0.1", help="with --replay: relative tolerances"
    )
    parser.add_argument("--burn-in", default="400", help="with --replay: burn-ins (steps)")
    parser.add_argument("--patience", default="600", help="with --replay: patiences (steps)")
    args = parser.parse_args()
    if args.replay:
        tolerances = [float(t) for t in args.tolerance.split(",")]
        burn_ins = [int(b) for b in args.burn_in.split(",")]
        replay(args.replay, tolerances, burn_ins, [int(p) for p in args.patience.split(",")])
        return

    import torch

    from napari_dip.engine import PRESETS, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    presets = args.presets.split(",") if args.presets else list(PRESETS)
    runs = len(args.tasks.split(",")) * len(args.images.split(",")) * len(presets)
    if args.checkpoint is not None and runs != 1:
        raise SystemExit("--checkpoint saves one run: give one task, image and preset")
    rows: list[dict] = []
    curves: list[dict] = []
    for task in args.tasks.split(","):
        if task not in TASKS:
            raise SystemExit(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
        for image in args.images.split(","):
            for preset in presets:
                kind = TASKS[task][0]
                steps = args.max_steps or round(
                    args.budget_factor * preset_of(preset).task(kind).steps
                )
                new_rows, curve = run_one(
                    task,
                    image,
                    preset,
                    args.size,
                    steps,
                    args.every,
                    args.device,
                    args.precision,
                    args.progress,
                    args.checkpoint,
                )
                rows += new_rows
                curves.append(curve)
                print(
                    f"done: {task} {image} {preset}, {steps} steps in {curve['seconds']:.0f} s "
                    f"({curve['seconds'] / steps * 1000:.0f} ms/step)",
                    file=sys.stderr,
                    flush=True,
                )
                args.curves.write_text(json.dumps({"runs": curves, "rows": rows}))
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {resolve_device(args.device)}, "
        f"{args.size}×{args.size} grey, precision {args.precision}; PSNR sampled every "
        f"{args.every} steps\n"
    )
    print_tables(rows)
    print(f"\ncurves: {args.curves}")


if __name__ == "__main__":
    main()
