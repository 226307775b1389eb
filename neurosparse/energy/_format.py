"""Human-readable numbers for report tables (SI prefixes, fixed width)."""

from __future__ import annotations

_PREFIXES = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
_SMALL = [(1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")]


def _shows_as_one_or_more(v: float, scale: float) -> bool:
    """Whether ``v / scale`` printed with 3 significant digits reads >= 1.

    Prefixes are picked on the rounded figure: 999.6 µJ prints as "1e+03 µJ" when picked
    on the raw value, and must read "1 mJ"."""
    return float(f"{abs(v) / scale:.3g}") >= 1


def _prefix(v: float) -> tuple[float, str]:
    """(scale, prefix) that :func:`unit` prints ``v`` with ((1.0, "") below femto)."""
    for scale, p in (*_PREFIXES, *_SMALL):
        if _shows_as_one_or_more(v, scale):
            return scale, p
    return 1.0, ""


def count(v: float | None) -> str:
    """1234567 -> '1.23 M'."""
    if v is None:
        return "-"
    for scale, p in _PREFIXES:
        if _shows_as_one_or_more(v, scale):
            return f"{v / scale:.3g} {p}"
    return f"{v:.3g}" if v != int(v) else f"{int(v)}"


def unit(v: float | None, u: str) -> str:
    """0.0000123, 'J' -> '12.3 µJ'."""
    if v is None:
        return "-"
    if v == 0:
        return f"0 {u}"
    scale, p = _prefix(v)
    return f"{v / scale:.3g} {p}{u}"


def frac(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def nbytes(v: float | None) -> str:
    if v is None:
        return "-"
    for scale, p in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if _shows_as_one_or_more(v, scale):
            return f"{v / scale:.3g} {p}"
    return f"{int(v)} B"


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain fixed-width table (first column left-aligned, the others right-aligned)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        return "  ".join(cells).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def unit_range(lo: float, hi: float, u: str) -> str:
    """(1.2e-8, 3.4e-8, "J") -> "12 – 34 nJ": both ends in the prefix of the high end."""
    top = unit(hi, u)
    if hi == 0 or lo < hi * 1e-3:  # ends of very different size: own prefixes
        return f"{unit(lo, u)} – {top}"
    # the prefix's own scale: dividing by hi / (hi's rounded figure) skewed the low end
    # by up to 0.5 % (1.0 – 1.0049 nJ printed "0.995 – 1 nJ")
    scale, _ = _prefix(hi)
    return f"{lo / scale:.3g} – {top}"
