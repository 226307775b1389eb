# %% [markdown]
# # One-shot associative memory of handwritten digits (Sparsey-style)
#
# `sdr.AssociativeMemory` learns each input in a **single presentation**: the input SDR
# is matched against binary Hebbian weights, the memory measures how familiar the input
# is, and in each of `Q = 40` competitive modules it picks one winner, deterministically
# when the input is familiar and more at random the less familiar it is (Rinkus 2014,
# 2017). Similar inputs therefore get overlapping codes, novel ones fresh codes, and all
# codes live in superposition in one weight matrix.
#
# Here scikit-learn's 8×8 digits (shipped with scikit-learn, no download) are turned
# into SDRs, a few hundred are stored once each with their labels, and we measure
# recall under input noise (0–30 % of the active bits moved) and how code overlap
# follows input similarity. The baseline is the simplest memory that also learns in
# one presentation: keep the stored input SDRs themselves and answer with the one of
# largest bit overlap (nearest-neighbour lookup). Five seeds; mean ± std.
#
#     python examples/07_sdr_memory.py [--quick]

# %%
import matplotlib

matplotlib.use("Agg")
import time

import matplotlib.pyplot as plt
import numpy as np
from _common import parse_args, write_summary
from scipy.stats import spearmanr
from sklearn.datasets import load_digits

from neurosparse import sdr

args = parse_args("07_sdr_memory", __doc__ or "SDR associative memory")
SEEDS = [args.seed + i for i in range(2 if args.quick else 5)]
N_STORE = 200 if args.quick else 500  # digits stored, one presentation each
N_TEST = 200 if args.quick else 500  # held-out digits, never stored
NOISE = [0.0, 0.1, 0.2, 0.3] if args.quick else [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
INPUT_BITS, INPUT_ACTIVE = 1024, 40

# %% [markdown]
# ## Digits as SDRs
# Each centred 64-pixel image is projected on 1024 random directions and the 40 largest
# projections become the active bits (a random projection followed by k-winners, as in
# the "fly hash" of Dasgupta et al. 2017): nearby images share many active bits, and
# every SDR has exactly 40 of 1024 bits on. Centring matters: without it the mean image
# dominates every projection and all digits share most of their bits.

# %%
digits = load_digits()
pixels = digits.data / 16.0
pixels = pixels - pixels.mean(0)
labels = digits.target


def to_sdrs(images: np.ndarray, projection: np.ndarray) -> list:
    top = np.argsort(-(images @ projection), axis=1)[:, :INPUT_ACTIVE]
    return [sdr.SDR(INPUT_BITS, row) for row in top]


def dense(sdrs: list) -> np.ndarray:
    out = np.zeros((len(sdrs), INPUT_BITS), dtype=np.float32)
    for i, s in enumerate(sdrs):
        out[i, s.sparse] = 1
    return out


# %% [markdown]
# ## Store once, recall under noise
# For every seed: draw the projection and the stored / held-out digits, store the
# `N_STORE` digits in a memory of 2048 code cells (40 modules × 51 cells; 2048 is
# rounded down to 2040), then recall noisy copies. Noise moves a fraction of the 40
# active bits to random inactive positions (`sdr.add_noise`). We report
#
# - **label accuracy (stored)**: `predict` on noisy copies of the stored digits;
# - **item recall**: the recalled code overlaps the stored digit's own code most
#   (near-duplicate digits share codes by design, so this is below 1 even without noise);
# - **exact code**: the recalled code equals the stored code, all 40 modules;
# - **label accuracy (held-out)**: `predict` on digits never stored.
#
# Each is compared with nearest-neighbour lookup on the stored input SDRs (largest bit
# overlap with the noisy probe; ties go to the first stored item): its label, and for
# item recall whether the nearest stored input is the probe's own digit.

# %%
results = {key: [] for key in ("stored", "item", "exact", "heldout")}
nn_results = {key: [] for key in ("stored", "item", "heldout")}
nn_baseline, store_seconds, familiarity_test, pair_rho = [], [], [], []
memories = []
for seed in SEEDS:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    train, test = order[:N_STORE], order[N_STORE : N_STORE + N_TEST]
    projection = rng.standard_normal((pixels.shape[1], INPUT_BITS))
    x_store, x_test = to_sdrs(pixels[train], projection), to_sdrs(pixels[test], projection)
    mem = sdr.AssociativeMemory(input_size=INPUT_BITS, code_size=2048, active=40, seed=seed)
    t0 = time.perf_counter()
    codes = mem.store(x_store, label=labels[train].tolist())
    store_seconds.append(time.perf_counter() - t0)
    memories.append((mem, x_store, codes, labels[train]))
    row = {key: [] for key in results}
    nn_row = {key: [] for key in nn_results}
    stored_dense = dense(x_store)
    for frac in NOISE:
        noisy = [sdr.add_noise(x, frac, seed=rng) for x in x_store]
        noisy_test = [sdr.add_noise(x, frac, seed=rng) for x in x_test]
        row["stored"].append(np.mean(np.array(mem.predict(noisy)) == labels[train]))
        row["item"].append(np.mean(mem.code_overlaps(noisy).argmax(1) == np.arange(N_STORE)))
        row["exact"].append(np.mean([r == c for r, c in zip(mem.recall(noisy), codes)]))
        row["heldout"].append(np.mean(np.array(mem.predict(noisy_test)) == labels[test]))
        near = (dense(noisy) @ stored_dense.T).argmax(1)
        near_test = (dense(noisy_test) @ stored_dense.T).argmax(1)
        nn_row["stored"].append(np.mean(labels[train][near] == labels[train]))
        nn_row["item"].append(np.mean(near == np.arange(N_STORE)))
        nn_row["heldout"].append(np.mean(labels[train][near_test] == labels[test]))
    for key in results:
        results[key].append(row[key])
    for key in nn_results:
        nn_results[key].append(nn_row[key])
    nearest = (dense(x_test) @ stored_dense.T).argmax(1)
    nn_baseline.append(np.mean(labels[train][nearest] == labels[test]))
    familiarity_test.append(float(np.mean(mem.familiarity(x_test))))
    # similarity → overlap over all pairs of stored digits
    d = dense(x_store)
    iu = np.triu_indices(N_STORE, 1)
    c = mem.codes
    code_pairs = (c[:, None, :] == c[None, :, :]).sum(2)[iu]
    pair_rho.append(spearmanr((d @ d.T)[iu], code_pairs)[0])

curves = {key: np.array(v) for key, v in results.items()}  # [seed, noise level]
nn_curves = {key: np.array(v) for key, v in nn_results.items()}
print(
    f"stored {N_STORE} digits in {np.mean(store_seconds) * 1e3:.0f} ms per seed "
    f"(one presentation each); held-out familiarity G = {np.mean(familiarity_test):.2f}"
)
print(
    f"{'moved bits':>10s} | {'label (stored)':>15s} | {'item recall':>13s} | "
    f"{'exact code':>13s} | {'label (held-out)':>16s}"
)
for j, frac in enumerate(NOISE):
    cells = [
        f"{curves[k][:, j].mean():.3f} ± {curves[k][:, j].std():.3f}"
        for k in ("stored", "item", "exact", "heldout")
    ]
    print(f"{frac:>10.0%} | {cells[0]:>15s} | {cells[1]:>13s} | {cells[2]:>13s} | {cells[3]:>16s}")
print("nearest-neighbour lookup on the stored input SDRs (the baseline):")
for j, frac in enumerate(NOISE):
    cells = [f"{nn_curves[k][:, j].mean():.3f} ± {nn_curves[k][:, j].std():.3f}"
             for k in ("stored", "item", "heldout")]  # fmt: skip
    print(f"{frac:>10.0%} | {cells[0]:>15s} | {cells[1]:>13s} | {'':>13s} | {cells[2]:>16s}")
print(f"chance 0.10 (labels), {1 / N_STORE:.3f} (items)")

# %%
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for key, name in (
    ("stored", "label, stored digits"),
    ("item", "item recall, stored"),
    ("heldout", "label, held-out digits"),
):
    m, s = curves[key].mean(0), curves[key].std(0)
    line = ax.errorbar(np.array(NOISE) * 100, m, yerr=s, marker="o", capsize=3, label=name)
    ax.plot(np.array(NOISE) * 100, nn_curves[key].mean(0), ls="--",
            color=line[0].get_color(), label=f"{name}, nearest neighbour")  # fmt: skip
ax.axhline(0.1, ls=":", color="k", label="chance (labels)")
ax.set(
    xlabel="active input bits moved (%)",
    ylabel="accuracy",
    ylim=(0, 1.02),
    title=f"One-shot memory of {N_STORE} digits ({len(SEEDS)} seeds, mean ± std)",
)
ax.legend(fontsize=8, loc="lower left")
fig.savefig(args.out / "recall_vs_noise.png", dpi=100)

# %% [markdown]
# ## Code overlap follows input similarity
# The learning rule's choice (`mem.encode`, which draws a code as `store` would without
# storing it) for probes that share 0…40 of a stored digit's 40 active bits: unrelated
# probes get codes that overlap the stored code only by chance (`Q/K = 0.78` modules),
# probes sharing most bits get (nearly) the stored code. The Spearman correlation is
# computed over all probes; the pairwise correlation between input and code overlap of
# the stored digits themselves is printed too.

# %%
mem, x_store, codes, _ = memories[0]
rng = np.random.default_rng(SEEDS[0] + 1000)
shared, code_overlap = [], []
for i in range(10 if args.quick else 30):
    for keep in range(0, INPUT_ACTIVE + 1, 4):
        probe = sdr.add_noise(x_store[i], count=INPUT_ACTIVE - keep, seed=rng)
        shared.append(sdr.overlap(probe, x_store[i]))
        code_overlap.append(sdr.overlap(mem.encode(probe), codes[i]))
shared, code_overlap = np.array(shared), np.array(code_overlap)
rho = spearmanr(shared, code_overlap)[0]
novel_probe = code_overlap[shared <= 4].mean()
levels = np.unique(shared // 4 * 4)
profile = [code_overlap[shared // 4 * 4 == lv].mean() for lv in levels]
print(
    f"probes: Spearman(input overlap, code overlap) = {rho:.3f}; probes sharing ≤ 4 bits: "
    f"code overlap {novel_probe:.2f} (chance {mem.chance_overlap:.2f})"
)
print("input overlap (bits): " + " ".join(f"{lv:5d}" for lv in levels))
print("code overlap (of 40): " + " ".join(f"{v:5.1f}" for v in profile))
print(
    f"stored digit pairs: Spearman(input overlap, code overlap) = {np.mean(pair_rho):.3f} ± "
    f"{np.std(pair_rho):.3f}"
)

# %%
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
jitter = np.random.default_rng(0).uniform(-0.6, 0.6, shared.size)
ax.scatter(shared + jitter, code_overlap, s=8, alpha=0.4, label="probes")
ax.plot(levels, profile, color="tab:red", marker="o", label="mean")
ax.axhline(mem.chance_overlap, ls=":", color="k", label="chance (Q/K)")
ax.set(
    xlabel="input bits shared with the stored digit (of 40)",
    ylabel="modules shared with its code (of 40)",
    title=f"Similar inputs → overlapping codes (Spearman {rho:.2f})",
)
ax.legend(fontsize=8)
fig.savefig(args.out / "overlap_vs_similarity.png", dpi=100)

# %% [markdown]
# ## Beside the papers
# Rinkus (2014, 2017) describes the mechanism and reports that learning on MNIST and
# Weizmann takes minutes on one CPU, but gives **no accuracy table** for one-shot recall
# under noise (and the abstract states the accuracy is not state of the art), so there
# is no number to match; the qualitative claims are compared instead, and beside each
# the nearest-neighbour lookup that also learns in one presentation.

# %%
claims = [
    (
        "each item is learned in one presentation",
        f"{N_STORE} digits stored once each; "
        f"label accuracy on them without noise {curves['stored'][:, 0].mean():.3f}",
    ),
    (
        "recall tolerates input noise",
        f"30 % of bits moved: label accuracy "
        f"{curves['stored'][:, -1].mean():.3f} ± {curves['stored'][:, -1].std():.3f} (stored), "
        f"{curves['heldout'][:, -1].mean():.3f} (held-out); nearest neighbour "
        f"{nn_curves['stored'][:, -1].mean():.3f} / {nn_curves['heldout'][:, -1].mean():.3f}",
    ),
    (
        "similar inputs get overlapping codes",
        f"Spearman {rho:.2f} (probes), {np.mean(pair_rho):.2f} (stored pairs)",
    ),
    (
        "novel inputs get new, low-overlap codes",
        f"probes sharing ≤ 4 bits: "
        f"{novel_probe:.2f} modules in common (chance {mem.chance_overlap:.2f})",
    ),
    ("fast on one CPU", f"{np.mean(store_seconds) * 1e3:.0f} ms to store {N_STORE} digits"),
]
for claim, ours in claims:
    print(f"- Sparsey: {claim:42s} | ours: {ours}")

# %%
# measured: see docs/reproductions.md (seeds 0-4: stored-digit labels 1.000 up to 30 %
# noise; held-out 0.93 -> 0.90, below nearest-neighbour lookup; probe Spearman > 0.9)
assert curves["stored"][:, 0].min() >= 0.98, "one-shot storage failed"
assert curves["stored"][:, -1].mean() >= 0.9, "recall is not robust to 30 % noise"
assert curves["heldout"].mean(0).min() > 0.6, "held-out digits are not recognised"
assert rho > 0.8, f"code overlap does not follow input similarity ({rho:.2f})"
assert novel_probe < 3 * mem.chance_overlap, f"novel inputs reuse codes ({novel_probe:.2f})"
write_summary(
    args.out,
    seeds=SEEDS,
    stored=N_STORE,
    held_out=N_TEST,
    noise=NOISE,
    recall={k: {"mean": v.mean(0).tolist(), "std": v.std(0).tolist()} for k, v in curves.items()},
    nn_baseline={"mean": float(np.mean(nn_baseline)), "std": float(np.std(nn_baseline))},
    nearest_neighbour={k: {"mean": v.mean(0).tolist(), "std": v.std(0).tolist()}
                       for k, v in nn_curves.items()},
    probe_spearman=float(rho),
    pair_spearman=float(np.mean(pair_rho)),
    novel_code_overlap=float(novel_probe),
    chance_code_overlap=mem.chance_overlap,
    overlap_profile={"input_overlap": levels.tolist(), "code_overlap": profile},
    store_ms=float(np.mean(store_seconds) * 1e3),
)
