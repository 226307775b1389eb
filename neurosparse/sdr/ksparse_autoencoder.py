"""k-sparse autoencoder (Makhzani & Frey 2014, arXiv 1312.5663), written from the paper.

Encoder ``h = W x + b``; only the ``k`` largest entries of ``h`` per sample are kept
(the others are set to 0; the gradient flows through the kept ones only); the decoder
shares the encoder's weights, ``x̂ = Wᵀ h_k + b'``; the loss is the squared error.

Two training notes from the paper:

- starting with a small ``k`` leaves many hidden units that never win and so never
  learn ("dead" units); the paper starts from a large ``k`` and lowers it to the target
  over the first part of training. Here (linear in the step ``t``)::

      k_t = round(k_start − (k_start − k) · min(1, t / (anneal_fraction · T)))

  with ``T`` the total number of steps;
- at test time the codes are computed with ``α · k`` winners (``alpha``; the paper's
  value is not verified here, so the default 1 leaves ``k`` unchanged).

The top-k selection is :func:`neurosparse.sdr.kwinners` without boosting and with
exact ties broken (exactly ``k`` winners).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_finite, check_float_tensor, check_range
from ..errors import ParameterError, ShapeError
from .kwinners import kwinners


class KSparseAutoencoder(nn.Module):
    """Tied-weight autoencoder whose hidden code keeps the top-``k`` units per sample.

    Parameters
    ----------
    in_features, hidden : int
        Input size ``D`` and hidden units ``H``.
    k : int
        Winners per sample after annealing (``1 <= k <= hidden``; ``k = hidden`` makes
        it a plain linear tied autoencoder, the dense baseline).
    alpha : float
        Test-time factor: in ``eval()`` mode codes keep ``min(hidden, round(alpha · k))``
        units.
    k_start : int, optional
        First ``k`` of the annealing schedule (default ``hidden``).
    anneal_fraction : float
        Fraction of the training steps of :meth:`fit` over which ``k`` falls from
        ``k_start`` to ``k`` (0: no annealing).

    Shape
    -----
    ``[..., D]`` in; codes ``[..., H]``; reconstructions ``[..., D]``.

    Examples
    --------
    >>> ae = KSparseAutoencoder(64, 100, k=10)
    >>> x = torch.rand(8, 64)
    >>> int((ae.eval().encode(x) != 0).sum(1).max()), ae(x).shape
    (10, torch.Size([8, 64]))
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        k: int,
        alpha: float = 1.0,
        k_start: int | None = None,
        anneal_fraction: float = 0.5,
    ) -> None:
        super().__init__()
        if int(in_features) < 1 or int(hidden) < 1:
            raise ParameterError(
                f"in_features and hidden must be >= 1, got {in_features} and {hidden}"
            )
        if not 1 <= int(k) <= int(hidden):
            raise ParameterError(f"k must lie in [1, hidden={hidden}], got {k}")
        check_range("alpha", alpha, 1.0)
        check_range("anneal_fraction", anneal_fraction, 0.0, 1.0)
        k_start = int(hidden) if k_start is None else int(k_start)
        if not int(k) <= k_start <= int(hidden):
            raise ParameterError(f"k_start must lie in [k={k}, hidden={hidden}], got {k_start}")
        self.in_features = int(in_features)
        self.hidden = int(hidden)
        self.k = int(k)
        self.alpha = float(alpha)
        self.k_start = k_start
        self.anneal_fraction = float(anneal_fraction)
        self.k_train = self.k  # the k used in training mode; fit() walks it down the schedule
        self.weight = nn.Parameter(torch.empty(self.hidden, self.in_features))
        self.bias = nn.Parameter(torch.zeros(self.hidden))
        self.decoder_bias = nn.Parameter(torch.zeros(self.in_features))
        # the paper initialises with small Gaussian weights; scale keeps Wᵀ·W near identity
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(self.in_features))
        self.register_buffer("_no_duty", torch.zeros(self.hidden), persistent=False)

    @property
    def k_test(self) -> int:
        """Winners per sample in ``eval()`` mode: ``min(hidden, round(alpha · k))``."""
        return min(self.hidden, int(round(self.alpha * self.k)))

    def k_schedule(self, step: int, total_steps: int) -> int:
        """``k`` at training step ``step`` of ``total_steps`` (linear annealing, see module)."""
        if total_steps < 1:
            raise ParameterError(f"total_steps must be >= 1, got {total_steps}")
        span = self.anneal_fraction * total_steps
        frac = 1.0 if span <= 0 else min(1.0, step / span)
        return int(round(self.k_start - (self.k_start - self.k) * frac))

    def _check(self, x: torch.Tensor) -> None:
        check_float_tensor("x", x)
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ShapeError(f"x must be [..., {self.in_features}], got shape {tuple(x.shape)}")
        check_finite("x", x)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """``W x + b`` before the top-k."""
        self._check(x)
        return F.linear(x, self.weight, self.bias)

    def encode(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Sparse code: ``W x + b`` with all but the ``k`` largest entries per sample zeroed.

        ``k`` defaults to the training ``k`` (annealed during :meth:`fit`) in training
        mode and to :attr:`k_test` in ``eval()`` mode.
        """
        if k is None:
            k = self.k_train if self.training else self.k_test
        if not 1 <= int(k) <= self.hidden:
            raise ParameterError(f"k must lie in [1, hidden={self.hidden}], got {k}")
        h = self.pre_activation(x)
        if int(k) == self.hidden:
            return h
        return kwinners(h, self._no_duty, int(k), boost_strength=0.0, break_ties=True)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Tied decoder ``Wᵀ h + b'``."""
        return F.linear(h, self.weight.t(), self.decoder_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``x̂`` of ``x`` through the sparse code."""
        return self.decode(self.encode(x))

    def fit(
        self,
        X: torch.Tensor,
        epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        seed: int | None = 0,
        progress: bool = True,
    ) -> list[float]:
        """Train on ``X`` (``[n, in_features]``) with Adam and the ``k`` annealing schedule.

        Parameters
        ----------
        X : float tensor ``[n, in_features]``
        epochs : int
            Passes over ``X``.
        batch_size : int
            Samples per step.
        lr : float
            Adam learning rate.
        seed : int, optional
            Seeds the shuffling (the weights are initialised in the constructor: seed
            torch before building the model for a reproducible run).
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        Mean training loss (squared error per element) of every epoch. The model is left
        in ``eval()`` mode with ``k_train = k``.
        """
        self._check(X)
        if X.dim() != 2:
            raise ShapeError(f"X must be [n, {self.in_features}], got shape {tuple(X.shape)}")
        if int(epochs) < 1 or int(batch_size) < 1:
            raise ParameterError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        from .._progress import progress_bar

        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        n = X.shape[0]
        per_epoch = math.ceil(n / batch_size)
        total = int(epochs) * per_epoch
        history: list[float] = []
        self.train()
        step = 0
        bar = progress_bar(range(int(epochs)), enabled=progress, desc="k-sparse AE", leave=False)
        for _ in bar:
            order = torch.randperm(n, generator=gen).to(X.device)
            total_loss = 0.0
            for start in range(0, n, batch_size):
                xb = X[order[start : start + batch_size]]
                self.k_train = self.k_schedule(step, total)
                loss = F.mse_loss(self(xb), xb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total_loss += loss.item() * xb.shape[0]
                step += 1
            history.append(total_loss / n)
            bar.set_postfix(loss=f"{history[-1]:.4f}", k=self.k_train)
        self.k_train = self.k
        self.eval()
        return history

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, hidden={self.hidden}, k={self.k}, "
            f"k_test={self.k_test}, k_start={self.k_start}, anneal_fraction={self.anneal_fraction}"
        )


__all__ = ["KSparseAutoencoder"]
