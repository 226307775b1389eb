"""Griffe extension: numpydoc math in docstrings becomes arithmatex math.

NumPy-style docstrings write display math as a reST directive (``.. math::`` and an
indented block) and inline math as ``:math:`...```; mkdocstrings renders Markdown, where
both would show as literal text. They become ``$$ ... $$`` blocks and ``$...$`` spans,
which ``pymdownx.arithmatex`` (generic mode) hands to MathJax.
"""

from __future__ import annotations

import re

import griffe

INLINE = re.compile(r":math:`([^`]+)`")


def convert(text: str) -> str:
    """``text`` with every ``.. math::`` block and ``:math:`` role turned into arithmatex."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)\.\. math::\s*(.*)$", lines[i])
        if not m:
            out.append(INLINE.sub(r"$\1$", lines[i]))
            i += 1
            continue
        indent, body = len(m.group(1)), [m.group(2)] if m.group(2).strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        width = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        pad = " " * indent
        out += ["", f"{pad}$$", *(pad + b[width:] for b in body), f"{pad}$$", ""]
    return "\n".join(out)


class NumpydocMath(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and ("math:" in obj.docstring.value):
            obj.docstring.value = convert(obj.docstring.value)
