"""A griffe extension for the API pages: Sphinx roles in docstrings become inline code.

The docstrings are numpydoc and also read in ``help()`` and IDEs, where Sphinx roles such as
``:func:`restore_steps``` or ``:class:`~.blur.Convolution``` are the usual way to name
another object. mkdocstrings does not interpret them, so they are shown as code here:
``restore_steps``, ``Convolution`` (a ``~`` or leading-dot path keeps its last name only).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const|ref):`([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    target = match.group(1).strip()
    if "<" in target and target.endswith(">"):  # :func:`title <target>`
        target = target.split("<", 1)[0].strip()
    elif target.startswith(("~", ".")):
        target = target.lstrip("~.").rsplit(".", 1)[-1]
    return f"`{target}`"


def strip_roles(text: str) -> str:
    """``text`` with every Sphinx cross-reference role turned into inline code."""
    return ROLE.sub(_plain, text)


class SphinxRoles(griffe.Extension):
    """Rewrite each object's docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        obj.docstring.value = strip_roles(obj.docstring.value)
