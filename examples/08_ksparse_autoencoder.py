# %% [markdown]
# # k-sparse autoencoder against a dense one: linear-probe accuracy on digits
#
# `sdr.KSparseAutoencoder` (Makhzani & Frey 2014) is a tied-weight linear autoencoder
# whose hidden code keeps only the `k` largest units per sample. `k` starts large and
# is annealed to its target over the first half of training (against dead units), and
# codes are computed with `α·k` units at test time. The paper compares against
# *non-linear* autoencoders (denoising, dropout) and RBMs, so the baselines here are
# non-linear autoencoders of the same width and training budget: a ReLU autoencoder
# (`Linear → ReLU → Linear`) and its denoising twin (25 % of the input pixels zeroed
# during training). The linear dense twin (the same class with `k = hidden`) and raw
# pixels are printed as references: a linear code can only match the pixels.
#
# All are trained on scikit-learn's 8×8 digits (no download); a logistic regression on
# the frozen codes (a linear probe) measures how much class information each code
# exposes linearly. Five seeds, mean ± std.
#
#     python examples/08_ksparse_autoencoder.py [--quick]

# %%
import matplotlib

matplotlib.use("Agg")
import time
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
from _common import parse_args, write_summary
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from neurosparse import sdr

args = parse_args("08_ksparse_autoencoder", __doc__ or "k-sparse autoencoder")
torch.set_num_threads(1)  # 64-pixel inputs: more threads only add overhead
SEEDS = [args.seed + i for i in range(1 if args.quick else 5)]
HIDDEN = 256
KS = [20] if args.quick else [5, 10, 20, 40]
EPOCHS = 30 if args.quick else 100
MASK = 0.25  # denoising AE: fraction of input pixels zeroed in training
ALPHA = 3.0  # test-time factor; the paper's own value is not verified (REFERENCES §7)

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)


def probe(train_codes, y_train, test_codes, y_test) -> float:
    clf = LogisticRegression(max_iter=3000).fit(train_codes, y_train)
    return float(clf.score(test_codes, y_test))


initial = {}  # (k, seed) -> the weights before training, to see how far training moved them


def train(k: int, seed: int, x_train: np.ndarray):
    torch.manual_seed(seed)
    ae = sdr.KSparseAutoencoder(64, HIDDEN, k=k, alpha=ALPHA if k < HIDDEN else 1.0)
    initial[k, seed] = ae.weight.detach().clone()
    losses = ae.fit(
        torch.from_numpy(x_train), epochs=EPOCHS, batch_size=64, lr=1e-3, seed=seed, progress=False
    )
    return ae, losses[-1]


class ReLUAutoencoder(torch.nn.Module):
    """The non-linear baseline: ``x -> ReLU(W1 x + b1) -> W2 h + b2``, untied."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.enc, self.dec = torch.nn.Linear(n_in, hidden), torch.nn.Linear(hidden, n_in)

    def encode(self, x):
        return torch.relu(self.enc(x))

    def forward(self, x):
        return self.dec(self.encode(x))


def train_relu(seed: int, x_train: np.ndarray, mask: float):
    """Same optimiser, batch, epochs and learning rate as the k-sparse fit."""
    torch.manual_seed(seed)
    ae, x = ReLUAutoencoder(64, HIDDEN), torch.from_numpy(x_train)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        total = 0.0
        for idx in torch.randperm(len(x), generator=gen).split(64):
            xb = x[idx]
            inp = xb * (torch.rand(xb.shape, generator=gen) >= mask) if mask else xb
            loss = torch.nn.functional.mse_loss(ae(inp), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
    return ae.eval(), total / len(x)


# %% [markdown]
# ## Train and probe
# Half of the 1797 digits train the autoencoders and the probe, the other half tests
# the probe. Raw pixels get the same probe, as a reference. "Dead" counts hidden units
# that are never among the winners on the test half.

# %%
BASELINES = {"relu": 0.0, "denoising": MASK}  # non-linear AEs: input mask in training
rows = {k: [] for k in [*KS, *BASELINES, HIDDEN, "pixels"]}
losses, dead, seconds = {k: [] for k in rows}, {k: [] for k in rows}, {k: [] for k in rows}
models = {}


def fit_and_probe(key, fit, x_tr, y_tr, x_te, y_te):
    """Train one autoencoder (``fit()``), probe its codes, record the row ``key``."""
    t0 = time.perf_counter()
    ae, loss = fit()
    seconds[key].append(time.perf_counter() - t0)
    with torch.no_grad():
        z_tr, z_te = (ae.encode(torch.from_numpy(a)).numpy() for a in (x_tr, x_te))
    rows[key].append(probe(z_tr, y_tr, z_te, y_te))
    losses[key].append(loss)
    dead[key].append(int(((z_te != 0).sum(0) == 0).sum()))
    return ae


for seed in SEEDS:
    x_tr, x_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, random_state=seed, stratify=y)
    rows["pixels"].append(probe(x_tr, y_tr, x_te, y_te))
    for k in [*KS, HIDDEN]:
        ae = fit_and_probe(k, partial(train, k, seed, x_tr), x_tr, y_tr, x_te, y_te)
        if seed == SEEDS[0]:
            models[k] = ae
    for b, mask in BASELINES.items():
        fit_and_probe(b, partial(train_relu, seed, x_tr, mask), x_tr, y_tr, x_te, y_te)


def name(k) -> str:
    if k == "pixels":
        return "raw pixels (64)"
    if k == "relu":
        return f"ReLU AE ({HIDDEN})"
    if k == "denoising":
        return f"denoising ReLU AE ({HIDDEN})"
    if k == HIDDEN:
        return f"linear dense AE ({HIDDEN})"
    return f"k-sparse k={k} (test {int(ALPHA * k)})"


print(f"{'code':>26s} | {'probe accuracy':>15s} | {'train MSE':>9s} | {'dead units':>10s} | s/fit")
for k, acc in rows.items():
    extra = (
        (f"{np.mean(losses[k]):9.4f} | {np.mean(dead[k]):10.1f} | {np.mean(seconds[k]):.1f}")
        if k != "pixels"
        else f"{'':9s} | {'':10s} |"
    )
    print(f"{name(k):>26s} | {np.mean(acc):.3f} ± {np.std(acc):.3f} | {extra}")
# the fair baseline: the better of the two non-linear AEs, per seed
best_nl = np.maximum(np.array(rows["relu"]), np.array(rows["denoising"]))
gaps = {k: float(np.mean(np.array(rows[k]) - best_nl)) for k in KS}
gaps_linear = {k: float(np.mean(np.array(rows[k]) - np.array(rows[HIDDEN]))) for k in KS}
print(
    "k-sparse − best non-linear AE, mean over seeds (per seed): "
    + "; ".join(
        f"k={k}: {g * 100:+.1f} points ({', '.join(f'{d * 100:+.1f}' for d in np.array(rows[k]) - best_nl)})"  # noqa: E501
        for k, g in gaps.items()
    )
)

# %%
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
means = [np.mean(rows[k]) for k in KS]
stds = [np.std(rows[k]) for k in KS]
ax.errorbar(KS, means, yerr=stds, marker="o", capsize=3, label="k-sparse AE")
for ref, style in (("relu", "-."), ("denoising", "--"), (HIDDEN, (0, (1, 3))), ("pixels", ":")):
    ax.axhline(np.mean(rows[ref]), ls=style, color="gray", label=name(ref))
ax.set(
    xscale="log",
    xlabel=f"k (winners of {HIDDEN} during training)",
    ylabel="linear-probe test accuracy",
    title=f"Digits, {len(SEEDS)} seeds (mean ± std)",
)
ax.set_xticks(KS, [str(k) for k in KS])
ax.legend(fontsize=8)
fig.savefig(args.out / "probe_vs_k.png", dpi=100)

# %% [markdown]
# ## Filters
# Rows of the shared weight matrix `W` shown as 8×8 images (the first 32 units). The
# paper reports that small `k` gives local, stroke-like filters on MNIST. Whether
# training moved ours that far is measured first: the cosine similarity between each
# trained filter and the same filter at initialisation (1 = unchanged), and the caption
# says what the numbers show.

# %%
def cosine_to_init(k: int, seed: int) -> np.ndarray:
    """Per hidden unit: cosine between the trained filter and its initial weights."""
    w = models[k].weight.detach()
    return torch.nn.functional.cosine_similarity(w, initial[k, seed], dim=1).numpy()


k_show = KS[len(KS) // 2]
cos = {k: cosine_to_init(k, SEEDS[0]) for k in (k_show, HIDDEN)}
for k, c in cos.items():
    print(f"{name(k)}: cosine of trained to initial filters, mean {c.mean():.3f} "
          f"(min {c.min():.3f}, max {c.max():.3f})")
moved = max(float(c.mean()) for c in cos.values()) < 0.5
caption = (
    "filters moved well away from their initialisation" if moved else
    f"filters still {cos[k_show].mean():.2f} (k-sparse) and {cos[HIDDEN].mean():.2f} "
    "(dense) cosine to their random initialisation: mostly the initial noise, not "
    "the paper's stroke-like filters"
)

fig, axes = plt.subplots(4, 16, figsize=(12, 3.4), layout="constrained")
for row, k in ((0, k_show), (2, HIDDEN)):
    w = models[k].weight.detach().numpy()
    for j in range(32):
        ax = axes[row + j // 16, j % 16]
        ax.imshow(w[j].reshape(8, 8), cmap="RdBu_r", vmin=-abs(w[j]).max(), vmax=abs(w[j]).max())
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(f"k={k}" if k != HIDDEN else "dense", fontsize=8)
fig.suptitle(f"First 32 filters, k-sparse (k={k_show}, top) and dense (bottom): {caption}",
             fontsize=9)
fig.savefig(args.out / "filters.png", dpi=100)

# %% [markdown]
# ## Beside the paper
# Makhzani & Frey (2014) report on MNIST (1000 hidden units, k = 25 to 40) that k-sparse
# codes give a better classification error than denoising and dropout autoencoders and
# RBMs. Their table values are **not verified** here (REFERENCES §7) and MNIST is not
# available offline (8×8 digits, 898 training images instead), so only the direction is
# compared.

# %%
best_k = max(KS, key=lambda k: np.mean(rows[k]))
print(
    f"- paper (MNIST, values unverified): k-sparse codes beat denoising / dropout AEs "
    f"and RBMs\n- ours (8x8 digits): best k = {best_k}: "
    f"{np.mean(rows[best_k]):.3f} ± {np.std(rows[best_k]):.3f} vs ReLU AE "
    f"{np.mean(rows['relu']):.3f} ± {np.std(rows['relu']):.3f}, denoising ReLU AE "
    f"{np.mean(rows['denoising']):.3f} ± {np.std(rows['denoising']):.3f} "
    f"({gaps[best_k] * 100:+.1f} points against the better of the two per seed); "
    f"linear dense AE {np.mean(rows[HIDDEN]):.3f}, raw pixels {np.mean(rows['pixels']):.3f}"
)

# %%
# measured: see docs/reproductions.md. The gaps are about a point either way, so what is
# asserted is that every code keeps the class information, not which one wins.
assert min(rows[20]) > 0.93, "k-sparse codes lost the class information"
assert min(best_nl) > 0.9, "the non-linear baselines did not train"
assert all(
    int((models[k].eval().encode(torch.from_numpy(X[:50])) != 0).sum(1).max()) == int(ALPHA * k)
    for k in KS
), "codes do not have alpha*k non-zeros"
write_summary(
    args.out,
    seeds=SEEDS,
    hidden=HIDDEN,
    ks=KS,
    alpha=ALPHA,
    epochs=EPOCHS,
    probe={
        str(k): {"mean": float(np.mean(v)), "std": float(np.std(v)), "runs": v}
        for k, v in rows.items()
    },
    gap_vs_nonlinear=gaps,
    gap_vs_linear_dense=gaps_linear,
    denoising_mask=MASK,
    train_mse={str(k): float(np.mean(v)) for k, v in losses.items() if v},
    dead_units={str(k): float(np.mean(v)) for k, v in dead.items() if v},
    filter_cosine_to_init={str(k): float(c.mean()) for k, c in cos.items()},
    filter_caption=caption,
)
