"""Write the CLI reference (``reference/cli.md``) from the argument parser itself.

Run by mkdocs-gen-files at build time: it walks ``napari_dip.cli.build_parser()`` and its
subcommands, so the page always says what ``napari-dip COMMAND --help`` says.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

os.environ["COLUMNS"] = "88"  # argparse wraps usage lines to the terminal: keep the page stable

PAGE = "reference/cli.md"


def subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, one-line help, parser)`` of each subcommand, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _default(action: argparse.Action, text: str) -> str:
    default = action.default
    if default in (None, False, argparse.SUPPRESS) or "default" in text.lower():
        return ""
    if isinstance(action, argparse._HelpAction | argparse._VersionAction):
        return ""
    return f" Default: `{default}`."


def options(parser: argparse.ArgumentParser) -> Iterator[str]:
    """Markdown for every argument group of ``parser``: a heading and a list of options."""
    formatter = parser._get_formatter()
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)
        ]
        if not actions:
            continue
        yield f"**{group.title}**\n"
        for action in actions:
            invocation = formatter._format_action_invocation(action)
            text = formatter._expand_help(action) if action.help else ""
            choices = ""
            if action.choices is not None and "{" not in invocation:
                choices = " One of " + ", ".join(f"`{c}`" for c in action.choices) + "."
            line = f"- `{invocation}`: {text}{choices}{_default(action, text)}"
            yield line.rstrip(": ")
        yield ""


def command_page(path: list[str], helptext: str, parser: argparse.ArgumentParser) -> Iterator[str]:
    """A section for one command (heading level from its depth), then its subcommands."""
    depth = len(path)
    yield f"{'#' * min(depth + 1, 4)} `{' '.join(path)}`\n"
    description = parser.description or helptext
    if description:
        yield description + "\n"
    yield "```text\n" + parser.format_usage().strip() + "\n```\n"
    subs = list(subcommands(parser))
    if subs:
        yield "| command | what it does |\n|---|---|"
        for name, text, _ in subs:
            yield f"| `{' '.join([*path, name])}` | {text} |"
        yield ""
    yield from options(parser)
    if parser.epilog:
        yield parser.epilog + "\n"
    for name, text, sub in subs:
        yield from command_page([*path, name], text, sub)


def render() -> str:
    from napari_dip.cli import PROG, build_parser

    head = [
        "# Command line reference\n",
        f"Generated from the argument parser (`napari_dip.cli.build_parser()`) when the docs "
        f"are built: it is what `{PROG} COMMAND --help` prints. Every run option is also a "
        "keyword of the [Python API](api/napari_dip.md) (`--tile-overlap` is `tile_overlap`).\n",
    ]
    return "\n".join([*head, *command_page([PROG], "", build_parser())])


def main() -> None:
    import mkdocs_gen_files

    with mkdocs_gen_files.open(PAGE, "w") as page:
        page.write(render())
    mkdocs_gen_files.set_edit_path(PAGE, "gen_cli.py")


if __name__ in ("__main__", "<run_path>"):  # mkdocs-gen-files runs scripts with runpy
    main()
