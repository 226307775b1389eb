"""The documentation site builds with ``mkdocs build --strict`` and documents every public name.

Skips (with the reason) where MkDocs, Material or mkdocstrings is not installed: they
are documentation tools, not runtime dependencies.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MISSING = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")
           if importlib.util.find_spec(m) is None]

# the packages whose __all__ the API reference must cover
PUBLIC = ["neurosparse", "neurosparse.neurons", "neurosparse.neurons.surrogate",
          "neurosparse.layers", "neurosparse.data", "neurosparse.sdr", "neurosparse.energy",
          "neurosparse.viz", "neurosparse.interop", "neurosparse.train",
          "neurosparse.plasticity", "neurosparse.errors"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if MISSING:
        pytest.skip(f"documentation tools not installed: {', '.join(MISSING)} "
                    "(pip install mkdocs mkdocs-material 'mkdocstrings[python]')")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out


def text(page: Path) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    body = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))
    return " ".join(body.split())


def anchors(site: Path) -> set[str]:
    ids: set[str] = set()
    for page in site.rglob("*.html"):
        ids |= set(re.findall(r'id="(neurosparse[\w.]*)"', page.read_text()))
    return ids


def documented_at(module: str, name: str, obj) -> list[str]:
    """Anchors under which ``module.name`` counts as documented."""
    places = [f"{module}.{name}"]
    defined_in, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if defined_in and qualname:
        places.append(f"{defined_in}.{qualname}")  # documented where it is defined
    if isinstance(getattr(obj, "__name__", None), str) and type(obj).__name__ == "module":
        places.append(obj.__name__)
    for other in PUBLIC:  # re-exported: documented under another public package
        if getattr(importlib.import_module(other), name, None) is obj:
            places.append(f"{other}.{name}")
    return places


def test_docs_build_strict_and_cover_every_public_name(site):
    ids = anchors(site)
    missing = []
    for module in PUBLIC:
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", []):
            if name.startswith("__"):
                continue
            if not set(documented_at(module, name, getattr(mod, name))) & ids:
                missing.append(f"{module}.{name}")
    assert not missing, f"public names without an API reference entry: {missing}"


def test_generated_pages_carry_the_repository_content(site):
    import neurosparse as ns

    profiles = text(site / "hardware-profiles" / "index.html")
    for name in ns.energy.list_profiles():
        prof = ns.energy.load_profile(name)
        assert prof.title.split()[0] in profiles, name
        for key, source in prof.sources.items():
            assert " ".join(source.split()) in profiles, (name, key)
    bench = (site / "benchmarks" / "index.html").read_text()
    for md in (ROOT / "benchmarks" / "results").glob("*.md"):
        assert f"from benchmarks/results/{md.name}" in bench
    quick = (site / "examples" / "01_quickstart" / "index.html").read_text()
    assert "ToSpikeTensor" in quick and "Quickstart" in quick


def test_reference_shows_constructors_declared_as_data(site):
    # the event/delta layers' __init__ is (*args, **kwargs); their parameters live in
    # layers/_base.py and reach the page through docs/hooks/griffe_signatures.py
    import neurosparse as ns

    page = text(site / "reference" / "layers" / "index.html")
    for cls in (ns.EventLinear, ns.EventConv2d, ns.DeltaLinear, ns.DeltaConv2d, ns.DeltaGRU):
        shown = re.search(rf"{cls.__name__} ¶ {cls.__name__} \( (.*?) \)", page)
        assert shown, cls
        names = [part.split(" = ")[0].strip() for part in shown.group(1).split(",")]
        assert [n for n in names if n] == list(inspect.signature(cls).parameters), cls
    assert "** kwargs" not in page


def test_formulas_are_marked_up_for_mathjax(site):
    spikes = (site / "concepts" / "spikes" / "index.html").read_text()
    assert 'class="arithmatex"' in spikes
    assert "mathjax" in spikes.lower()  # the typesetter is loaded on the page
    api = (site / "reference" / "neurons" / "index.html").read_text()
    assert ".. math::" not in api and ":math:" not in text(site / "reference" / "neurons" /
                                                            "index.html")  # fmt: skip
    assert api.count('class="arithmatex"') >= 3  # LIF, ALIF and CubaLIF's equations


def test_neuron_page_starts_with_lif_and_has_no_empty_stubs(site):
    api = (site / "reference" / "neurons" / "index.html").read_text()
    classes = re.findall(r'id="neurosparse\.neurons\.(\w+)"', api)
    assert classes[0] == "LIF"
    # every documented member carries text: no attribute headings without a docstring
    assert 'id="neurosparse.neurons.SpikingNeuron.is_spiking_neuron"' not in api


# pages edited by other engineers: docs/hooks/make_figures.py writes their figures
# (how-to/energy-report.png, how-to/read-events.png), the one-line link is theirs to add
OTHERS = {"energy-report", "read-events"}


def test_concept_and_how_to_pages_have_a_figure(site):
    pages = sorted((ROOT / "docs" / "concepts").glob("*.md")) + sorted(
        (ROOT / "docs" / "how-to").glob("*.md"))
    for md in pages:
        if md.stem in OTHERS:
            assert (md.parent / f"{md.stem}.png").is_file(), md.stem
            continue
        html_page = site / md.parent.name / md.stem / "index.html"
        assert "<img" in html_page.read_text(), f"{md.relative_to(ROOT)} has no figure"


def test_example_pages_show_outputs(site):
    for nb in sorted((ROOT / "examples" / "notebooks").glob("*.ipynb")):
        page = (site / "examples" / nb.stem / "index.html").read_text()
        assert 'class="ns-output"' in page, nb.stem
        assert "summary:" in page, nb.stem  # every example prints where its summary went
        assert "data:image/png;base64," in page, nb.stem  # and draws at least one figure
