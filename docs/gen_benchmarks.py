"""Write the benchmark pages from the result files in ``benchmarks/results/*.json``.

Run by mkdocs-gen-files at build time. A result file in the benchmarks' format is::

    {"name": str, "title": str, "command": str, "date": "YYYY-MM-DD", "machine": str,
     "columns": [str, ...], "rows": [[...], ...], "notes": [str, ...],
     "plots": [{"title": str, "x": column, "y": [columns], "group": column or null,
                "kind": "line" | "bar"}]}

Each becomes a page with its table and its plots (PNG, drawn here with matplotlib into the
built site; never committed). Other JSON files in that folder (recorded curves) are skipped.
With no result file yet, the page lists the benchmarks and how to run them.
"""

from __future__ import annotations

import ast
import datetime
import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"
SECTION = "benchmarks"
KINDS = ("line", "bar")


class FormatError(ValueError):
    """A JSON file that is not a result in the benchmarks' format."""


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError(f"{what} must be a list of strings")
    return value


def check_result(data: object) -> dict[str, Any]:
    """``data`` if it is a result in the format above, else :class:`FormatError` saying why."""
    if not isinstance(data, dict):
        raise FormatError("not a JSON object")
    for key in ("name", "title", "command", "date", "machine"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise FormatError(f"{key!r} must be a non-empty string")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", data["name"]):
        raise FormatError(f"name {data['name']!r} must be letters, digits, '_', '.' or '-'")
    try:
        datetime.date.fromisoformat(data["date"])
    except ValueError:
        raise FormatError(f"date {data['date']!r} is not YYYY-MM-DD") from None
    columns = _strings(data.get("columns"), "'columns'")
    rows = data.get("rows")
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and len(r) == len(columns) for r in rows
    ):
        raise FormatError(f"'rows' must be a list of rows of {len(columns)} values")
    _strings(data.get("notes", []), "'notes'")
    plots = data.get("plots", [])
    if not isinstance(plots, list):
        raise FormatError("'plots' must be a list")
    for plot in plots:
        if not isinstance(plot, dict) or not isinstance(plot.get("title"), str):
            raise FormatError("each plot needs a 'title'")
        used = [plot.get("x"), *_strings(plot.get("y"), "a plot's 'y'")]
        if plot.get("group") is not None:
            used.append(plot["group"])
        missing = [c for c in used if c not in columns]
        if missing:
            raise FormatError(f"plot {plot['title']!r} names unknown columns {missing}")
        if plot.get("kind", "line") not in KINDS:
            raise FormatError(f"plot {plot['title']!r}: kind must be one of {KINDS}")
    return data


def load_results(folder: Path = RESULTS) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """The results in ``folder`` (newest first, then by name) and the JSON files skipped."""
    results, skipped = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            results.append(check_result(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError, FormatError) as err:
            skipped.append((path, str(err)))
    results.sort(key=lambda r: r["name"])
    results.sort(key=lambda r: r["date"], reverse=True)
    return results, skipped


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = "" if math.isnan(value) else f"{value:.6g}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; numbers are right-aligned."""
    numeric = [
        all(isinstance(r[i], int | float) or r[i] is None for r in rows) and bool(rows)
        for i in range(len(columns))
    ]
    lines = [
        "| " + " | ".join(_cell(c) for c in columns) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def plot_png(result: dict[str, Any], plot: dict[str, Any]) -> bytes:
    """One plot of ``result`` as PNG bytes: a line per ``y`` column (and per group), or bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns, rows = result["columns"], result["rows"]
    x, ys, group = plot["x"], plot["y"], plot.get("group")
    xi, gi = columns.index(x), (None if group is None else columns.index(group))
    groups: dict[object, list[Sequence[object]]] = {}
    for row in rows:
        groups.setdefault(None if gi is None else row[gi], []).append(row)
    series = [
        (f"{y}" if key is None else f"{key}" if len(ys) == 1 else f"{key}: {y}", members, y)
        for key, members in groups.items()
        for y in ys
    ]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100, layout="constrained")
    if plot.get("kind", "line") == "bar":
        labels = list(dict.fromkeys(str(r[xi]) for r in rows))
        width = 0.8 / max(len(series), 1)
        for n, (label, members, y) in enumerate(series):
            values = {str(r[xi]): r[columns.index(y)] for r in members}
            heights = [values.get(v, math.nan) for v in labels]
            heights = [math.nan if h is None else float(h) for h in heights]
            ax.bar([i + n * width for i in range(len(labels))], heights, width, label=label)
        ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(labels))], labels)
    else:
        for label, members, y in series:
            points = [
                (r[xi], r[columns.index(y)]) for r in members if r[columns.index(y)] is not None
            ]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(ys[0] if len(ys) == 1 else ", ".join(ys))
    ax.set_title(plot["title"])
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def result_page(result: dict[str, Any]) -> tuple[str, dict[str, bytes]]:
    """The Markdown of one result's page and its images (file name -> PNG bytes)."""
    images: dict[str, bytes] = {}
    lines = [
        f"# {result['title']}\n",
        f"`{result['name']}` · {result['date']} · {result['machine']}\n",
        "```bash\n" + result["command"] + "\n```\n",
        table(result["columns"], result["rows"]) + "\n",
    ]
    notes = result.get("notes", [])
    if notes:
        lines += [f"- {note}" for note in notes] + [""]
    for n, plot in enumerate(result.get("plots", [])):
        name = f"{result['name']}-{n + 1}.png"
        images[name] = plot_png(result, plot)
        lines.append(f"![{plot['title']}]({name})\n")
    lines.append(f"Result file: `benchmarks/results/{result['name']}.json`.")
    return "\n".join(lines) + "\n", images


def benchmark_scripts(folder: Path = BENCHMARKS) -> Iterator[tuple[str, str]]:
    """``(name, first docstring line)`` of every runnable benchmark module in ``folder``."""
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        source = path.read_text(encoding="utf-8")
        if "__main__" not in source:
            continue  # a helper module (scores, datasets, baselines)
        doc = ast.get_docstring(ast.parse(source)) or ""
        first = " ".join(doc.split("\n\n")[0].split())
        first = re.sub(r"^Benchmark:\s*", "", first)
        first = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", first)  # Sphinx roles as code
        yield path.stem, first[:1].upper() + first[1:]


def run_command(name: str, folder: Path = BENCHMARKS) -> str:
    """How to run benchmark ``name`` here."""
    if (folder / "__main__.py").exists():
        return f"python -m benchmarks {name}"
    return f"python benchmarks/{name}.py"


def index_page(results: list[dict[str, Any]], skipped: list[tuple[Path, str]]) -> str:
    lines = ["# Benchmarks\n"]
    if results:
        lines.append(
            "Each page below is drawn from one result file in `benchmarks/results/` when the "
            "docs are built: the command that made it, the machine, the table and its plots.\n"
        )
        lines.append("| result | date | machine |\n|---|---|---|")
        for r in results:
            lines.append(
                f"| [{_cell(r['title'])}]({r['name']}.md) | {r['date']} | {_cell(r['machine'])} |"
            )
        lines.append("")
    else:
        lines.append(
            "No result file in the benchmarks' JSON format (`benchmarks/results/*.json`, "
            "see [Contributing](../contributing.md#benchmarks)) has been recorded yet, so "
            "there are no tables or plots here. These are the benchmarks; run one with the "
            "command beside it (`--help` lists its options):\n"
        )
    lines.append("| benchmark | what it measures | run it |\n|---|---|---|")
    for name, text in benchmark_scripts():
        lines.append(f"| `{name}` | {_cell(text)} | `{run_command(name)}` |")
    lines.append("")
    lines.append(
        "Conclusions drawn from earlier runs (one line each, with the file it came from) "
        "are in the [benchmark history](history.md).\n"
    )
    if skipped:
        lines.append(
            f"{len(skipped)} other JSON file(s) in `benchmarks/results/` are not in this "
            "format (recorded curves and run records) and are not drawn here.\n"
        )
    return "\n".join(lines)


def write_pages(folder: Path = RESULTS) -> None:
    import mkdocs_gen_files

    results, skipped = load_results(folder)
    with mkdocs_gen_files.open(f"{SECTION}/index.md", "w") as page:
        page.write(index_page(results, skipped))
    mkdocs_gen_files.set_edit_path(f"{SECTION}/index.md", "gen_benchmarks.py")
    for result in results:
        text, images = result_page(result)
        with mkdocs_gen_files.open(f"{SECTION}/{result['name']}.md", "w") as page:
            page.write(text)
        for name, data in images.items():
            with mkdocs_gen_files.open(f"{SECTION}/{name}", "wb") as image:
                image.write(data)


if __name__ in ("__main__", "<run_path>"):  # mkdocs-gen-files runs scripts with runpy
    # NAPARI_DIP_RESULTS points the build at another folder (to try this script on samples).
    import os

    write_pages(Path(os.environ.get("NAPARI_DIP_RESULTS", RESULTS)))
