"""MkDocs hook: pages generated from the repository at build time, so they never drift.

Markers in a page are replaced by generated Markdown:

- ``<!-- ns:hardware-profiles -->``: every built-in hardware profile
  (``neurosparse/energy/profiles/*.toml``) with its constants, ranges and sources;
- ``<!-- ns:benchmarks -->``: ``benchmarks/RESULTS.md`` and every
  ``benchmarks/results/*.md`` (and ``benchmarks/results/*.png`` are copied into the site);
- ``<!-- ns:example NAME.py -->``: the example as prose, code and the outputs of its
  executed notebook ``examples/notebooks/NAME.ipynb`` (printed text and figures, made by
  ``python examples/make_notebooks.py``); the script ``examples/NAME.py`` (Jupytext
  percent format) as prose and code where there is no notebook.

Included Markdown from outside ``docs/`` has its headings moved one level down and its
relative links turned into plain text (their targets are not part of the site).

Docstrings in the package use Sphinx roles (``:func:`~neurosparse.data.read_events```),
which mkdocstrings leaves as text; they become cross-references resolved by
mkdocs-autorefs (plain code where the target is not documented).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

MARKER = re.compile(r"<!--\s*ns:(hardware-profiles|benchmarks|example)\s*([^ ]*)\s*-->")
SPHINX_ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):<code>(~?)([\w.]+)</code>")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\((?!https?://|#)([^)]+)\)")


def _root(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def _outside_fences(text: str, fn) -> str:
    """Apply ``fn`` to every line outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            out.append(line)
        else:
            out.append(line if fenced else fn(line))
    return "\n".join(out)


def include(text: str, levels: int = 1) -> str:
    """Markdown from outside docs/: headings ``levels`` deeper, relative links as text."""

    def fix(line: str) -> str:
        if re.match(r"#{1,5} ", line):
            line = "#" * levels + line
        return LINK.sub(lambda m: f"{m.group(1)} (`{m.group(2)}`)", line)

    return _outside_fences(text, fix)


# -- hardware profiles -------------------------------------------------------------------
def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return f"`{v}`" if isinstance(v, str) else str(v)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def hardware_profiles() -> str:
    from neurosparse.energy import list_profiles, load_profile

    parts = []
    for name in list_profiles():
        p = load_profile(name)
        parts += [f"## `{p.name}`", "", f"**{_cell(p.title)}**; execution: `{p.execution}`; "
                  f"provenance: **{p.provenance}**.", ""]
        if p.notes:
            parts += [_cell(p.notes), ""]
        rows = [("energy", k, v) for k, v in p.energy.items()]
        rows += [("latency", k, v) for k, v in p.latency.items()]
        rows += [("capacity", k, v) for k, v in p.capacity.items()]
        parts += ["| section | constant | value | range | source |", "|---|---|---|---|---|"]
        for section, key, value in rows:
            unsure = p.uncertain.get(key, "")
            if key in p.uncertain:
                unsure = f"{unsure[0]:g} – {unsure[1]:g}" if unsure else "uncertain, no range"
            src = _cell(p.sources.get(key, ""))
            parts.append(f"| {section} | `{key}` | {_fmt(value)} | {unsure} | {src} |")
        parts.append("")
    return "\n".join(parts)


# -- benchmarks --------------------------------------------------------------------------
def benchmarks(root: Path) -> str:
    parts = []
    results = root / "benchmarks" / "RESULTS.md"
    if results.is_file():
        parts += [include(results.read_text()), ""]
    else:
        parts += ["!!! note", "    `benchmarks/RESULTS.md` (the summary table of every benchmark) "
                  "is not in this checkout yet; the per-topic results follow.", ""]
    for md in sorted((root / "benchmarks" / "results").glob("*.md")):
        parts += [f"<!-- from benchmarks/results/{md.name} -->", include(md.read_text()), ""]
    return "\n".join(parts)


# -- examples ----------------------------------------------------------------------------
SETUP_TAG = "find-examples"  # examples/make_notebooks.py's path cell: not the example's
NOISE = re.compile(r"^<[\w.]+ (object )?at 0x[0-9a-f]+>$")  # reprs such as torch.manual_seed's


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _outputs(cell) -> list[str]:
    """A code cell's printed text and figures as Markdown (figures inline, base64)."""
    parts = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            text = _source({"source": out.get("text", "")}).rstrip()
        elif "image/png" in data:
            png = _source({"source": data["image/png"]}).replace("\n", "")
            parts.append(f"![figure printed by this cell](data:image/png;base64,{png})")
            continue
        elif "text/plain" in data:
            text = _source({"source": data["text/plain"]}).rstrip()
            if NOISE.match(text):
                continue
        else:
            continue
        if text:
            parts.append(f"```text\n{text}\n```")
    return parts


def _from_notebook(nb: dict) -> list[str]:
    parts = []
    for cell in nb["cells"]:
        src = _source(cell).strip("\n")
        if cell["cell_type"] == "markdown":
            parts.append(src)
        elif cell["cell_type"] == "code" and SETUP_TAG not in cell.get("metadata", {}).get(
                "tags", []):
            if src.strip():
                parts.append(f"```python\n{src}\n```")
            outs = _outputs(cell)
            if outs:
                parts.append('<div class="ns-output" markdown>\n\n' + "\n\n".join(outs)
                             + "\n\n</div>")
    return parts


def _from_script(text: str) -> list[str]:
    cells = re.split(r"^# %%(.*)$", text, flags=re.M)
    parts = []
    # re.split with one group: [before, header1, body1, header2, body2, ...]
    for header, body in zip(cells[1::2], cells[2::2]):
        body = body.strip("\n")
        if not body.strip():
            continue
        if "[markdown]" in header:
            lines = [re.sub(r"^# ?", "", ln) for ln in body.splitlines()]
            parts.append("\n".join(lines))
        else:
            parts.append(f"```python\n{body}\n```")
    return parts


def example(root: Path, name: str) -> str:
    path = root / "examples" / name
    notebook = root / "examples" / "notebooks" / f"{path.stem}.ipynb"
    if notebook.is_file():
        parts = _from_notebook(json.loads(notebook.read_text()))
        shown = (f" The outputs shown are those of `examples/notebooks/{notebook.name}`, "
                 "executed by `python examples/make_notebooks.py`.")
    else:
        parts, shown = _from_script(path.read_text()), ""
    head = (f"Source: `examples/{name}` (a plain script in Jupytext's percent format; "
            f"`jupytext --to notebook` opens it as a notebook). Run it with "
            f"`python examples/{name}`, or `--quick` for the small settings the tests use."
            + shown)
    md = "\n\n".join(parts)
    first, _, rest = md.partition("\n")  # keep the script's title as the page title
    return f"{first}\n\n{head}\n{rest}"


def on_files(files, config):
    """Figures that ``benchmarks/RESULTS.md`` shows (``results/*.png``) join the site at
    the same relative path, so the included page's image links resolve."""
    from mkdocs.structure.files import File

    for png in sorted((_root(config) / "benchmarks" / "results").glob("*.png")):
        files.append(File.generated(config, f"results/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    root = _root(config)

    def replace(m: re.Match) -> str:
        kind, arg = m.group(1), m.group(2)
        if kind == "hardware-profiles":
            return hardware_profiles()
        if kind == "benchmarks":
            return benchmarks(root)
        return example(root, arg)

    return MARKER.sub(replace, markdown)


def on_page_content(html: str, page, config, files) -> str:
    def ref(m: re.Match) -> str:
        short, target = m.group(1), m.group(2)
        shown = target.rsplit(".", 1)[-1] if short else target
        if target.startswith("."):  # relative to an unknown module: no link
            return f"<code>{shown.lstrip('.')}</code>"
        return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

    return SPHINX_ROLE.sub(ref, html)
