"""Sparsey-style associative memory: single-trial learning of sparse codes in superposition.

After Rinkus (2014, *Front. Comput. Neurosci.*; 2017, arXiv 1710.07829), re-implemented
from the papers' description. The code layer is ``Q = active`` competitive modules
(winner-take-all groups) of ``K = code_size // active`` cells; a code is exactly one
winner per module, so every code has ``Q`` active cells and two codes overlap in the
number of modules where they chose the same cell (``Q / K`` on average by chance).

Weights from input bits to code cells are binary and start at 0. For an input ``x``
with ``a`` active bits, one presentation works as follows (the "code selection
algorithm"):

1. input match of code cell ``j``: ``V_j = (Σ_{i ∈ x} w_ij) / a`` in ``[0, 1]``; with
   ``chance_correction`` (default) the match a random input would get by chance, the
   cell's fan-in fraction ``f_j = Σ_i w_ij / N``, is taken out: ``(V_j − f_j) / (1 − f_j)``.
   Without it, cells that have stored many items match every input a little, so
   novel inputs look familiar as the memory fills, are given old codes, which widens
   those cells further: measured on 1024-bit inputs with 40 active, the plain ``V``
   collapsed between 300 and 600 stored items, the corrected one still recalls 1000
   exactly;
2. familiarity ``G = (1/Q) Σ_q max_{j ∈ q} V_j`` (1: some stored code covers every
   active bit in every module; 0: nothing stored resembles ``x``);
3. ``η = clip((G − familiarity_floor) / (1 − familiarity_floor), 0, 1)`` and
   ``β = beta · η / (1 − η)``;
4. in each module a winner is drawn with probability ``∝ exp(β · V_j)`` (``η = 1``:
   the best match, ties at random; ``η = 0``: uniform);
5. storing sets ``w_ij = 1`` for every active input bit ``i`` and winner ``j``.

So a familiar input re-activates (most of) the code of what it resembles, while a novel
one gets a fresh, random code that overlaps old codes only by chance; input similarity
is mapped to code overlap, and each item is learned in one presentation. Recall is the
deterministic version of step 4 (the best match per module).

Matching is one gather-and-sum over the weight rows of the active input bits (numpy);
a batch is one matrix product.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import torch

from .._checks import check_range
from ..errors import DTypeError, InputValueError, ParameterError, ShapeError
from .sdr import SDR, SDRLike


class AssociativeMemory:
    """Sparsey-like associative memory with single-trial learning (Rinkus 2014, 2017).

    Parameters
    ----------
    input_size : int
        Bits of the input SDRs ``N``.
    code_size : int
        Cells of the code layer; rounded down to a multiple of ``active`` (the
        :attr:`code_size` attribute holds the value used, ``active · cells_per_module``).
    active : int
        Competitive modules ``Q``, hence active cells per code.
    beta : float
        Scale of the inverse temperature ``β = beta · η / (1 − η)`` of the winner choice
        while storing (larger: familiar inputs reuse old codes more faithfully).
    familiarity_floor : float
        Familiarity at or below which an input counts as entirely novel (uniformly
        random code). Chance matches make ``G`` of a novel input positive (about 0.2
        with 1024-bit inputs, 40 active, a few hundred items stored); this floor keeps
        such inputs from being pulled onto old codes.
    chance_correction : bool
        Subtract each cell's chance match (step 1 of the module description).
    seed : int or numpy.random.Generator, optional
        Source of all randomness (winner draws, ties).

    Attributes
    ----------
    weights : numpy.ndarray
        ``[input_size, code_size]`` boolean input → code weights.
    codes : numpy.ndarray
        ``[n_stored, active]`` code-cell indices of the stored codes (one per module,
        in module order).
    labels : list
        Label of each stored item (``None`` where none was given).

    Examples
    --------
    >>> from neurosparse import sdr
    >>> mem = sdr.AssociativeMemory(input_size=512, code_size=1000, active=20, seed=0)
    >>> x = sdr.random_sdr(512, 25, seed=1)
    >>> code = mem.store(x, label="cat")
    >>> mem.recall(x) == code, mem.predict(sdr.add_noise(x, 0.2, seed=2))
    (True, 'cat')
    """

    def __init__(
        self,
        input_size: int,
        code_size: int = 2048,
        active: int = 40,
        beta: float = 10.0,
        familiarity_floor: float = 0.2,
        chance_correction: bool = True,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if int(input_size) < 1:
            raise ParameterError(f"input_size must be >= 1 bit, got {input_size}")
        if int(active) < 1:
            raise ParameterError(f"active (modules Q) must be >= 1, got {active}")
        if int(code_size) < 2 * int(active):
            raise ParameterError(
                f"code_size must give at least 2 cells per module: code_size >= 2·active = "
                f"{2 * int(active)}, got {code_size}"
            )
        check_range("beta", beta, 0.0)
        check_range("familiarity_floor", familiarity_floor, 0.0, 1.0)
        if familiarity_floor >= 1.0:
            raise ParameterError(f"familiarity_floor must be < 1, got {familiarity_floor}")
        self.input_size = int(input_size)
        self.modules = int(active)
        self.cells_per_module = int(code_size) // self.modules
        self.code_size = self.modules * self.cells_per_module
        self.beta = float(beta)
        self.familiarity_floor = float(familiarity_floor)
        self.chance_correction = bool(chance_correction)
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.weights = np.zeros((self.input_size, self.code_size), dtype=bool)
        self._fan_in = np.zeros(self.code_size, dtype=np.float64)
        self._codes: list[np.ndarray] = []
        self.labels: list[Hashable | None] = []

    # -- input handling ------------------------------------------------------------------
    def _one(self, x: SDRLike, name: str) -> np.ndarray:
        """Active-bit indices of one input, validated."""
        if isinstance(x, SDR):
            if x.size != self.input_size:
                raise ShapeError(f"{name} has size {x.size}, expected input_size={self.input_size}")
            idx = x.sparse
        else:
            if isinstance(x, torch.Tensor):
                x = x.detach().cpu().numpy()
            arr = np.asarray(x)
            if arr.ndim != 1:
                raise ShapeError(f"{name} must be one SDR (1-D), got shape {arr.shape}")
            if arr.dtype == bool or np.issubdtype(arr.dtype, np.floating):
                if arr.shape[0] != self.input_size:
                    raise ShapeError(
                        f"{name} has {arr.shape[0]} bits, expected input_size={self.input_size}"
                    )
                if arr.dtype != bool and not np.isin(arr, (0.0, 1.0)).all():
                    bad = arr[~np.isin(arr, (0.0, 1.0))][0]
                    raise InputValueError(
                        f"{name} must be binary (0/1), found the value {bad}; "
                        "binarise it or encode it as an SDR first"
                    )
                idx = np.flatnonzero(arr)
            elif np.issubdtype(arr.dtype, np.integer) or arr.size == 0:
                idx = np.unique(arr.astype(np.int64))
                if idx.size and (idx[0] < 0 or idx[-1] >= self.input_size):
                    raise InputValueError(
                        f"{name}: active-bit indices must lie in [0, {self.input_size - 1}], "
                        f"got values in [{idx[0]}, {idx[-1]}]"
                    )
            else:
                raise DTypeError(
                    f"{name} must be an SDR, an integer index array or a bool/float 0/1 "
                    f"vector, got dtype {arr.dtype}"
                )
        if idx.size == 0:
            raise InputValueError(f"{name} has no active bits; an empty input matches nothing")
        return np.asarray(idx, dtype=np.int64)

    def _many(self, x) -> tuple[list[np.ndarray], bool]:
        """(list of index arrays, whether the input was a batch)."""
        if isinstance(x, SDR):
            return [self._one(x, "x")], False
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if (
            isinstance(x, (list, tuple))
            and x
            and isinstance(x[0], (SDR, np.ndarray, list, tuple, torch.Tensor))
        ):
            return [self._one(v, f"x[{i}]") for i, v in enumerate(x)], True
        arr = np.asarray(x)
        if arr.ndim == 2:
            return [self._one(row, f"x[{i}]") for i, row in enumerate(arr)], True
        if arr.ndim != 1:
            raise ShapeError(
                f"x must be one SDR (1-D) or a batch (2-D [B, input_size] 0/1 array, "
                f"[B, a] index array, or a list of SDRs), got shape {arr.shape}"
            )
        return [self._one(arr, "x")], False

    # -- matching ------------------------------------------------------------------------
    def match(self, x: SDRLike) -> np.ndarray:
        """Normalised input match ``V`` of every code cell, ``[code_size]`` (or ``[B, code_size]``).

        ``V_j`` is the fraction of the input's active bits with a weight onto cell ``j``.
        """
        items, batch = self._many(x)
        v = self._match(items)
        return v if batch else v[0]

    def _match(self, items: list[np.ndarray]) -> np.ndarray:
        if len(items) == 1:
            idx = items[0]
            v = (self.weights[idx].sum(0, dtype=np.float64) / idx.size)[None]
        else:
            dense = np.zeros((len(items), self.input_size), dtype=np.float32)
            for r, idx in enumerate(items):
                dense[r, idx] = 1.0
            counts = dense @ self.weights.astype(np.float32)
            v = counts.astype(np.float64) / dense.sum(1, keepdims=True)
        if self.chance_correction:
            f = self._fan_in / self.input_size
            full = f >= 1.0
            v = (v - f) / np.where(full, 1.0, 1.0 - f)
            v[:, full] = 0.0
        return v

    def _by_module(self, v: np.ndarray) -> np.ndarray:
        return v.reshape(v.shape[0], self.modules, self.cells_per_module)

    def familiarity(self, x: SDRLike) -> float | np.ndarray:
        """Familiarity ``G`` of ``x``: the mean over modules of the best cell's match, in [0, 1]."""
        items, batch = self._many(x)
        g = np.clip(self._by_module(self._match(items)).max(2), 0.0, 1.0).mean(1)
        return g if batch else float(g[0])

    # -- codes ---------------------------------------------------------------------------
    def _offsets(self) -> np.ndarray:
        return np.arange(self.modules) * self.cells_per_module

    def _choose(self, v: np.ndarray) -> np.ndarray:
        """Stochastic winners (cell indices, ``[Q]``) for one input's match vector ``v``."""
        vm = v.reshape(self.modules, self.cells_per_module)
        g = np.clip(vm.max(1), 0.0, 1.0).mean()
        eta = min(max((g - self.familiarity_floor) / (1.0 - self.familiarity_floor), 0.0), 1.0)
        # tiny random keys break exact ties at random without favouring low indices
        keys = self._rng.random(vm.shape)
        if eta >= 1.0 - 1e-12:
            best = vm == vm.max(1, keepdims=True)
            win = np.where(best, keys, -1.0).argmax(1)
        else:
            beta = self.beta * eta / (1.0 - eta)
            gumbel = -np.log(-np.log(np.clip(keys, 1e-300, 1.0 - 1e-16)))
            win = (beta * vm + gumbel).argmax(1)  # Gumbel-max: a draw ∝ exp(β·V)
        return win + self._offsets()

    def _best(self, v: np.ndarray) -> np.ndarray:
        return self._by_module(v).argmax(2) + self._offsets()

    def _as_sdr(self, cells: np.ndarray) -> SDR:
        return SDR._trusted(self.code_size, np.asarray(cells, dtype=np.int64))

    def encode(self, x: SDRLike) -> SDR | list[SDR]:
        """The code storing ``x`` would choose now (familiarity-dependent noise), not stored.

        Advances the random generator. Use :meth:`recall` for the deterministic best match.
        """
        items, batch = self._many(x)
        codes = [self._as_sdr(self._choose(v)) for v in self._match(items)]
        return codes if batch else codes[0]

    def store(
        self, x: SDRLike, label: Hashable | Sequence[Hashable] | None = None
    ) -> SDR | list[SDR]:
        """Learn ``x`` (one SDR or a batch, in order) in a single presentation.

        Parameters
        ----------
        x : SDR, index array, 0/1 vector, or a batch of them
            Input(s) with at least one active bit each.
        label : hashable, or a sequence of one label per item for a batch, optional
            Returned by :meth:`predict` for inputs closest to this item.

        Returns
        -------
        The chosen code(s): :class:`SDR` of ``code_size`` bits with one active cell per module.
        """
        items, batch = self._many(x)
        if batch:
            labels = [None] * len(items) if label is None else list(label)
            if len(labels) != len(items):
                raise ShapeError(f"label has {len(labels)} entries for a batch of {len(items)}")
        else:
            labels = [label]
        out = []
        for idx, lab in zip(items, labels):
            # each item sees the weights left by the previous ones (sequential learning)
            cells = self._choose(self._match([idx])[0])
            self.weights[np.ix_(idx, cells)] = True
            self._fan_in[cells] = self.weights[:, cells].sum(0)
            self._codes.append(cells)
            self.labels.append(lab)
            out.append(self._as_sdr(cells))
        return out if batch else out[0]

    def recall(self, x: SDRLike) -> SDR | list[SDR]:
        """The code of ``x``: the best-matching cell of every module (lowest index on ties)."""
        items, batch = self._many(x)
        codes = [self._as_sdr(c) for c in self._best(self._match(items))]
        return codes if batch else codes[0]

    def code_overlaps(self, x: SDRLike) -> np.ndarray:
        """Overlap (modules in common) of the recalled code with every stored code.

        ``[n_stored]`` for one input, ``[B, n_stored]`` for a batch.
        """
        items, batch = self._many(x)
        best = self._best(self._match(items))
        stored = self.codes
        ov = (best[:, None, :] == stored[None, :, :]).sum(2)
        return ov if batch else ov[0]

    def predict(self, x: SDRLike) -> Hashable | list[Hashable]:
        """Label of the labelled stored code that overlaps the recalled code most.

        Ties go to the item stored first.
        """
        labelled = np.array([lab is not None for lab in self.labels], dtype=bool)
        if not labelled.any():
            raise ParameterError("predict needs stored labels: store items with label=...")
        items, batch = self._many(x)
        ov = (self._best(self._match(items))[:, None, :] == self.codes[None]).sum(2)
        ov[:, ~labelled] = -1
        out = [self.labels[i] for i in ov.argmax(1)]
        return out if batch else out[0]

    # -- state ---------------------------------------------------------------------------
    @property
    def codes(self) -> np.ndarray:
        if not self._codes:
            return np.zeros((0, self.modules), dtype=np.int64)
        return np.stack(self._codes)

    @property
    def n_stored(self) -> int:
        """Number of items stored."""
        return len(self._codes)

    @property
    def chance_overlap(self) -> float:
        """Expected overlap of two independent random codes: ``Q / K`` modules."""
        return self.modules / self.cells_per_module

    def reset(self) -> None:
        """Forget everything stored (the random generator continues)."""
        self.weights[:] = False
        self._fan_in[:] = 0.0
        self._codes.clear()
        self.labels.clear()

    def __repr__(self) -> str:
        return (
            f"AssociativeMemory(input_size={self.input_size}, code_size={self.code_size}, "
            f"active={self.modules}, cells_per_module={self.cells_per_module}, "
            f"stored={self.n_stored})"
        )


__all__ = ["AssociativeMemory"]
