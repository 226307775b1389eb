"""Report figures (matplotlib): energy per layer per hardware, sparsity over time."""

from __future__ import annotations

from pathlib import Path


def plot_report(report, path: Path) -> Path:
    # a bare Figure renders to a file without pyplot, so the user's backend (inline
    # figures in a notebook) is left alone
    from matplotlib.figure import Figure

    layers = [layer.name for layer in report.layers]
    fig = Figure(figsize=(12, 4.5))
    ax_e, ax_s = fig.subplots(1, 2)
    n_hw = max(len(report.hardware), 1)
    width = 0.8 / n_hw
    for i, r in enumerate(report.hardware):
        # zero energy (e.g. a profile without per-op figures) has no bar on a log axis
        vals = [r.layer_energy_j.get(name, 0.0) or float("nan") for name in layers]
        xs = [j + (i - (n_hw - 1) / 2) * width for j in range(len(layers))]
        ax_e.bar(xs, vals, width=width, label=r.name)
    ax_e.set_yscale("log")
    ax_e.set_xticks(range(len(layers)))
    ax_e.set_xticklabels(layers, rotation=45, ha="right", fontsize=8)
    ax_e.set_ylabel("dynamic energy per inference (J)")
    ax_e.set_title("Energy per layer")
    if report.hardware:
        ax_e.legend(fontsize=7)

    sp = report.sparsity_over_time()
    steps = range(len(sp["activation"]))
    for key, label in (("activation", "activation (neuron outputs)"),
                       ("input", "input (synaptic layers)")):
        ys = [float("nan") if v is None else v for v in sp[key]]
        ax_s.plot(list(steps), ys, marker="o", ms=3, label=label)
    ax_s.set_ylim(0, 1.02)
    ax_s.set_xlabel("time step")
    ax_s.set_ylabel("sparsity (fraction of zeros)")
    missing = report.layers_without_steps()
    ax_s.set_title("Sparsity over time" + (
        f"\n(left out, no per-step counts: {', '.join(missing)})" if missing else ""),
        fontsize=9 if missing else None)
    ax_s.legend(fontsize=7)
    fig.suptitle(f"{report.model}: {report.samples} sample(s), {report.time_steps} step(s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
