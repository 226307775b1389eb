# %% [markdown]
# # High-order sequences in the HTM sequence memory, with htm.core's default parameters
#
# Hawkins & Ahmad (2016) show that the temporal memory learns **high-order** sequences:
# in A-B-C-D and X-B-C-Y the shared middle B-C gets different cells in the two
# contexts, so after C the memory predicts D or Y depending on how the sequence began.
# Here `sdr.SequenceMemory` learns such pairs with **htm.core's default parameters**
# (2048 columns of 32 cells, 40 active columns, activation threshold 13, ... ,
# `predicted_segment_decrement = 0`), then with one change: a small
# `predicted_segment_decrement` (0.05), which punishes segments that predicted wrongly.
# Each sequence is preceded by a reset, as in htm.core's usage. Five seeds.
#
#     python examples/high_order_sequences.py [--quick] [--pairs 4] [--epochs 30]

# %%
import time

import numpy as np
from _common import parse_args, write_summary

from neurosparse import sdr


def add_flags(p):
    p.add_argument("--pairs", type=int, default=4, help="sequence pairs sharing a middle")
    p.add_argument("--epochs", type=int, default=None, help="passes (default 30)")
    p.add_argument("--seeds", type=int, default=None, help="runs (default 5)")


args = parse_args("high_order_sequences", __doc__ or "High-order sequences", add_flags)
SEEDS = [args.seed + s for s in range(args.seeds or (2 if args.quick else 5))]
EPOCHS = args.epochs or (15 if args.quick else 30)
COLUMNS, ACTIVE, CELLS = 2048, 40, 32
SETTINGS = {"htm.core defaults": 0.0, "predicted_segment_decrement = 0.05": 0.05}


def make_pairs(rng):
    """Pairs (A B C D, X B C Y): distinct random SDRs, the middle shared within a pair."""
    def code():
        return np.sort(rng.choice(COLUMNS, ACTIVE, replace=False))
    pairs = []
    for _ in range(args.pairs):
        b, c = code(), code()
        pairs.append(([code(), b, c, code()], [code(), b, c, code()]))
    return pairs


# %% [markdown]
# ## Protocol
# Every epoch presents every sequence once (reset before each), learning on. After each
# epoch, without learning, each sequence is replayed up to C and the prediction for the
# next step is read: **accuracy** = share of the correct ending's columns predicted,
# **wrong** = share of the other ending's columns (not shared with the correct one)
# predicted. A memory that has learned the high-order structure has accuracy 1, wrong 0.

# %%
def evaluate(tm, pairs):
    acc, wrong = [], []
    for first, second in pairs:
        for seq, other in ((first, second), (second, first)):
            tm.reset()
            for x in seq[:3]:
                out = tm.step(x, learn=False)
            predicted = np.unique(out.predictive_cells // CELLS)
            acc.append(np.isin(seq[3], predicted).mean())
            foreign = np.setdiff1d(other[3], seq[3])
            wrong.append(np.isin(foreign, predicted).mean())
    return float(np.mean(acc)), float(np.mean(wrong))


def run(seed, decrement):
    rng = np.random.default_rng(seed)
    pairs = make_pairs(rng)
    tm = sdr.SequenceMemory(COLUMNS, cells_per_column=CELLS, seed=seed,
                            predicted_segment_decrement=decrement)  # fmt: skip
    curve = []
    for _ in range(EPOCHS):
        for first, second in pairs:
            for seq in (first, second):
                tm.reset()
                for x in seq:
                    tm.step(x, learn=True)
        curve.append(evaluate(tm, pairs))
    return np.array(curve)  # [epoch, (accuracy, wrong)]


curves = {name: [] for name in SETTINGS}
t0 = time.perf_counter()
for name, dec in SETTINGS.items():
    for seed in SEEDS:
        curves[name].append(run(seed, dec))
seconds = time.perf_counter() - t0
C = {name: np.array(v) for name, v in curves.items()}  # [seed, epoch, 2]
print(f"{args.pairs} pairs of sequences, {EPOCHS} epochs, {len(SEEDS)} seeds ({seconds:.0f} s)")
checkpoints = sorted({1, 5, 10, EPOCHS // 2, EPOCHS} - {0})
print(f"{'setting':>36s} | " + " | ".join(f"epoch {e:>2d} acc / wrong" for e in checkpoints))
for name, c in C.items():
    cells = [f"{c[:, e - 1, 0].mean():.2f} / {c[:, e - 1, 1].mean():.2f}" for e in checkpoints]
    print(f"{name:>36s} | " + " | ".join(f"{x:>20s}" for x in cells))
final = {name: {"accuracy": [float(c[:, -1, 0].mean()), float(c[:, -1, 0].std())],
                "wrong": [float(c[:, -1, 1].mean()), float(c[:, -1, 1].std())],
                "solved_seeds": int(((c[:, -1, 0] == 1) & (c[:, -1, 1] == 0)).sum())}
         for name, c in C.items()}  # fmt: skip
for name, f in final.items():
    print(f"{name}: after {EPOCHS} epochs accuracy {f['accuracy'][0]:.3f} ± "
          f"{f['accuracy'][1]:.3f}, wrong ending predicted {f['wrong'][0]:.3f} ± "
          f"{f['wrong'][1]:.3f}; solved (acc 1, wrong 0) in {f['solved_seeds']}/{len(SEEDS)}")
print("Hawkins & Ahmad 2016: high-order sequences are disambiguated (the ending after C is "
      "predicted from the context, the other ending is not).")

# %% [markdown]
# ## Why the defaults keep a wrong prediction
# In the first epochs B is not yet predicted, so its whole column bursts and C's cells
# learn from B's burst in both sequences: a cell of C then predicts D *and* Y. Once the
# contexts separate, the segment predicting the other ending keeps being active after C
# in the wrong context; the only rule that weakens a segment whose prediction did not
# come true is `predicted_segment_decrement`, and htm.core's default for it is 0. With
# the default the wrong prediction therefore stays forever; a small positive value
# removes it within a few epochs.

# %%
# measured: see docs/reproductions.md. Asserted: the learning works with the decrement,
# and every setting at least predicts the correct ending.
assert final["predicted_segment_decrement = 0.05"]["accuracy"][0] > 0.95
assert final["predicted_segment_decrement = 0.05"]["wrong"][0] < 0.05
assert final["htm.core defaults"]["accuracy"][0] > 0.95
write_summary(args.out, seeds=SEEDS, pairs=args.pairs, epochs=EPOCHS, columns=COLUMNS,
              active=ACTIVE, cells_per_column=CELLS, settings=SETTINGS, final=final,
              curves={n: {"accuracy": c[:, :, 0].mean(0).tolist(),
                          "wrong": c[:, :, 1].mean(0).tolist()} for n, c in C.items()},
              seconds=seconds)  # fmt: skip
