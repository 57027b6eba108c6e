"""Docs build helper: render the reStructuredText bits of docstrings as
Markdown for the API reference (mkdocstrings renders docstrings as
Markdown, and codecpickle's docstrings are written for ``help()`` and
Sphinx-style roles).

- ``:class:`~codecpickle.errors.X``` and other roles become inline code of
  the name (the last component with ``~``, as Sphinx shows it);
- double-backquoted literals become single-backquoted code;
- ``.. warning::``/``.. note::`` directives become admonitions;
- a paragraph ending in ``::`` ends in ``:`` (its indented block is already
  a Markdown code block).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj|const|ref|term):`(~?)([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_DIRECTIVE = re.compile(r"^(\s*)\.\. (warning|note|tip|important)::\s*(.*)$")


def _role(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    target = re.sub(r"^.*<(.+)>$", r"\1", target)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def convert(text: str) -> str:
    """The Markdown form of one docstring."""
    text = _ROLE.sub(_role, text)
    text = _LITERAL.sub(r"`\1`", text)
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        if match is None:
            line = lines[index]
            if line.rstrip().endswith("::") and line.strip() != "::":
                line = line.rstrip()[:-1]
            out.append(line)
            index += 1
            continue
        indent, kind, first = match.groups()
        out.append(f"{indent}!!! {kind}")
        body = [first] if first else []
        index += 1
        while index < len(lines) and (not lines[index].strip() or
                                      len(lines[index]) - len(lines[index].lstrip())
                                      > len(indent)):
            body.append(lines[index].strip())
            index += 1
        while body and not body[-1]:
            body.pop()
        out.extend(f"{indent}    {line}" if line else "" for line in body)
        out.append("")
    return "\n".join(out)


class RstRoles(griffe.Extension):
    """Rewrite every docstring once it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
