"""The form's controls: labels and tooltips from :data:`napari_dip.options.OPTIONS`, and the
few helpers that make and read them.

A tooltip is the option's help text (shared with the CLI's ``--help`` and the API docs), what
each of its choices does, and a line of this widget's own: when to change it.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox
from magicgui.widgets import Widget as MagicWidget
from qtpy.QtCore import Qt

from ..options import OPTIONS, UNCERTAINTY_MEMBERS, Choice

__all__ = [
    "WHEN",
    "auto_int",
    "bullets",
    "camera_controls",
    "combo",
    "ensemble_controls",
    "fuse_control",
    "label_of",
    "option",
    "tooltip_of",
]

# Widget labels for options whose names read badly (used until options.Option has a label).
_LABELS = {
    "lr": "learning rate",
    "perturb_std": "input noise",
    "tv_weight": "TV weight",
    "tile": "tile size",
    "sigma": "noise σ (0: estimate)",
    "ensemble": "ensemble size",
    "warm_start": "warm-start each slice from the one before",
    "fuse": "fuse with a classical denoiser",
}
# When to change each advanced option: the line under its help text in the tooltip.
WHEN = {
    "preset": "the quality choice sets it; pick another to try a variant network",
    "steps": "raise it when a run ends with 'step budget reached' and still improved; "
    "lower it to cap the time",
    "stop": "try 'wmv' when the automatic stop ends too early (the result stays noisy); "
    "'none' runs every step, e.g. to compare",
    "seed": "change it to see how much a result depends on the random start",
    "device": "pick one of several GPUs, or the CPU when a GPU runs out of memory",
    "precision": "float32 to compare exactly or when a result looks off",
    "update_every": "lower it to watch closely, raise it to save a little time on big images",
    "lr": "lower it when the loss jumps about or the result collapses; rarely needed",
    "perturb_std": "raise it a little when the result keeps a fine noise; 0 turns it off",
    "tv_weight": "a little (e.g. 0.01) for piecewise-flat images; it also smooths texture",
    "noise": "Poisson for photon counts (low-light fluorescence), Poisson–Gaussian when the "
    "camera adds read noise",
    "sigma": "give it when you know the noise level (a calibrated camera's read noise, a "
    "synthetic test); 0 estimates it from the image",
    "gain": "give it when you know the camera (data sheet, calibration)",
    "offset": "give it when you know the camera's dark level",
    "read_noise": "give it when you know the camera's read noise",
    "tile": "a smaller side when a big image runs out of memory, a larger one if tile edges "
    "show; 'none' fits the image whole",
    "workers": "1 fits one tile at a time (least memory); more, to use more cores",
    "warm_start": "untick it when neighbouring slices or frames differ a lot (a cut in a "
    "time-lapse, unrelated images stacked), or to restore each exactly as on its own",
    "ensemble": "2–8 for a cleaner result and a spread to judge it by; each member is a whole "
    "fit, so the run takes that many times longer",
    "fuse": "denoising with the SURE stop, for the last fraction of a dB on plain noisy "
    "images (BM3D shows only when the bm3d package is installed); inpainting: none to see "
    "the network's fill alone",
    "uncertainty": "to see where the result is unsure (edges, fine texture, low signal): a "
    "second layer, 'NAME [… σ]', shows the members' standard deviation when the run ends",
}


def label_of(name: str) -> str:
    return getattr(OPTIONS[name], "label", None) or _LABELS.get(name, name.replace("_", " "))


def tooltip_of(name: str, choices: tuple[Choice, ...] = ()) -> str:
    """The option's help text, what each choice does and when to change it."""
    entry = OPTIONS[name]
    lines = [entry.help[:1].upper() + entry.help[1:] + "."]
    if choices or entry.choices:
        lines.append(bullets(choices or entry.choices))
    if name in WHEN:
        lines.append(f"When to change it: {WHEN[name]}.")
    return "\n".join(lines)


def auto_int(name: str, text: str, none: bool = False) -> int | str | None:
    """A text box's ``auto``, ``none`` (where allowed) or whole number."""
    word = str(text).strip().lower()
    if word in ("", "auto", "0"):
        return "auto"
    if none and word == "none":
        return None
    try:
        return int(word)
    except ValueError:
        allowed = "'auto', 'none' or" if none else "'auto' or"
        raise ValueError(
            f"{label_of(name)} must be {allowed} a whole number, got {text!r}"
        ) from None


def bullets(choices: tuple[Choice, ...]) -> str:
    """``choices`` as a tooltip's bulleted list: "• label: help", one a line."""
    return "\n".join(f"• {c.label}: {c.help}" for c in choices)


def combo(label: str, choices: tuple[Choice, ...], value: str, tooltip: str) -> ComboBox:
    """A drop-down of ``choices``: their labels shown, their names as values, their help on
    hover."""
    box = ComboBox(label=label, choices=[(c.label, c.name) for c in choices], value=value)
    box.tooltip = tooltip
    for i, choice in enumerate(choices):
        box.native.setItemData(i, choice.help, Qt.ItemDataRole.ToolTipRole)
    return box


def option(name: str, kind: type, **kwargs: Any) -> MagicWidget:
    """A control of ``kind`` for run option ``name``, labelled and explained from OPTIONS."""
    return kind(label=label_of(name), tooltip=tooltip_of(name), **kwargs)


def fuse_control(task: str = "denoise") -> ComboBox:
    """*Fuse with a classical denoiser* (denoising: the choices whose package is installed)
    or *fuse with the biharmonic fill* (inpainting: auto, which fuses unless an uncertainty
    map is asked for)."""
    import importlib.util

    from ..options import FUSIONS

    if task == "inpaint":
        fills = tuple(c for c in FUSIONS if c.name in ("auto", "none", "biharmonic"))
        tip = tooltip_of("fuse", fills)
        return combo("fuse with the biharmonic fill", fills, "auto", tip)
    found = tuple(
        c
        for c in FUSIONS
        if c.name in ("none", "nlmeans") or (c.name == "bm3d" and importlib.util.find_spec("bm3d"))
    )
    return combo(label_of("fuse"), found, "none", tooltip_of("fuse", found))


def camera_controls() -> tuple[CheckBox, MagicWidget, MagicWidget, MagicWidget]:
    """The Poisson models' camera: *estimate* (ticked), gain, offset and read noise."""
    estimate = CheckBox(text="estimate camera gain and offset", value=True)
    estimate.tooltip = (
        "Poisson noise models: estimate the camera from the image (a mean–variance fit); "
        "untick to give gain, offset and read noise.\nWhen to change it: when you know "
        "the camera (data sheet, calibration)."
    )
    return (
        estimate,
        option("gain", FloatSpinBox, value=1.0, min=1e-6, max=1e6, step=0.01),
        option("offset", FloatSpinBox, value=0.0, min=-1e9, max=1e9, step=1.0),
        option("read_noise", FloatSpinBox, value=0.0, min=0.0, max=1e6, step=0.1),
    )


def ensemble_controls() -> tuple[CheckBox, MagicWidget]:
    """*Uncertainty map* and the ensemble size; ticking the map with no ensemble sets the
    members the library uses then (:data:`~napari_dip.options.UNCERTAINTY_MEMBERS`), so the
    form shows what will run."""
    uncertainty = CheckBox(text="uncertainty map (σ layer)", value=False)
    uncertainty.tooltip = tooltip_of("uncertainty")
    ensemble = option("ensemble", SpinBox, value=1, min=1, max=64)

    def ticked(on: bool) -> None:
        if on and int(ensemble.value) < 2:
            ensemble.value = UNCERTAINTY_MEMBERS

    uncertainty.changed.connect(ticked)
    return uncertainty, ensemble
