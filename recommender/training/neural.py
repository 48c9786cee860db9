"""Training the neural ranker with torch (CPU, one thread): mini-batch Adam with weight decay (L2) on the
mean binary cross-entropy over tasks (soft targets for the watch quantile), warm-started from the active
neural version when there is one, early-stopped on the newest tenth of the training examples, and bounded
in wall time.

Deterministic for given examples: seeded initialisation and batch order, one thread, and a stopping rule that
counts epochs and steps; the wall-time budget is only a safety net (``TrainingRun.out_of_time`` says when it
stopped a run). Inputs are standardised with the training part's mean and deviation inside the network and the
scaling is folded into the first layer on export, so the served model reads raw feature rows: item rates,
whose spread across items is a few hundredths, otherwise barely move a freshly initialised layer."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..ranking.model import TASKS
from ..ranking.neural import HIDDEN, NeuralRanker, Ranker
from .trainer import roc_auc

VALIDATION_FRACTION = 0.1
PATIENCE = 4  # epochs without a better validation score before stopping
PATIENCE_STEPS = 200  # ... and at least this many optimiser steps (from a zero head, 40 rarely left the start)
MIN_STEPS = 400  # the epoch cap allows at least this many steps
AUC_MARGIN = 1e-3  # validation AUC gain that counts as better ranking
MIN_SCALE = 0.05  # standardising divides by at least this: a feature nearly constant in training stays tame


@dataclass(frozen=True)
class TrainingRun:
    model: NeuralRanker
    epochs: int
    seconds: float
    validation_loss: float
    warm_start: bool
    out_of_time: bool = False  # the wall-time budget, not the stopping rule, ended training


def train_neural(start: Ranker, X: np.ndarray, Y: np.ndarray, *, batch_size: int, max_epochs: int,
                 learning_rate: float, weight_decay: float, time_budget: float, seed: int,
                 calibration_steps: int = 200) -> TrainingRun:
    """A new NeuralRanker trained on (X, Y) in time order; ``start`` (the active version) is not changed.
    From a prior start, ``calibration_steps`` full-batch steps first fit only the prior's per-task scale and
    bias; then the whole network trains, early-stopped on the validation tail's AUC (then log loss)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    began = time.perf_counter()
    gains = (start.affinity_gain, start.collab_gain, start.popularity_gain)
    n_valid = max(1, int(len(X) * VALIDATION_FRACTION)) if len(X) >= 20 else 0
    fit_part = X[: len(X) - n_valid] if len(X) - n_valid > 0 else X
    mean = fit_part.astype(np.float64).mean(axis=0)
    scale = np.maximum(fit_part.astype(np.float64).std(axis=0), MIN_SCALE)
    network = _Network(X.shape[1], len(TASKS), torch, mean, scale)
    warm = isinstance(start, NeuralRanker) and start.hidden == HIDDEN
    if warm:
        network.load(start, torch)
    base = NeuralRanker(network.export(), np.ones(len(TASKS)), *gains)
    prior = torch.as_tensor(base.prior_logits(X), dtype=torch.float32)
    inputs = torch.as_tensor(X, dtype=torch.float32)
    targets = torch.as_tensor(np.clip(Y, 0.0, 1.0), dtype=torch.float32)

    train_idx = np.arange(len(X) - n_valid)
    valid = slice(len(X) - n_valid, len(X))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    y_valid = np.clip(Y[valid], 0.0, 1.0)

    def validation_score() -> tuple[float, float]:
        """(mean AUC over tasks with both classes, mean log loss) of the network on the validation tail."""
        network.eval()
        with torch.no_grad():
            logits = network(inputs[valid], prior[valid])
            loss = float(loss_fn(logits, targets[valid]))
        scores = logits.numpy()
        aucs = [a for t in range(scores.shape[1]) if (a := roc_auc(y_valid[:, t], scores[:, t])) is not None]
        return (float(np.mean(aucs)) if aucs else 0.0), loss

    def better(score: tuple[float, float], best: tuple[float, float]) -> bool:
        # ranking first (AUC, what the feed uses), then calibration: a run may not trade ranking for log loss
        return score[0] > best[0] + AUC_MARGIN or (score[0] >= best[0] - 1e-9 and score[1] < best[1] - 1e-5)

    # 1. Calibration: the per-task scale of the prior and the heads' biases only. Monotone per task, so it
    #    cannot change any task's AUC; it fixes the prior's probabilities, whose ranking is already decent.
    if not warm and len(train_idx) and calibration_steps > 0:
        #    The heads' weights are still zero here, so the network's output is bias + scale · prior: no need to
        #    run the hidden layers (on tens of thousands of examples they made this step the slowest).
        calibration = torch.optim.Adam([network.prior_scale, network.heads.bias], lr=0.05)
        fit_prior, fit_targets = prior[: len(train_idx)], targets[: len(train_idx)]
        for _ in range(calibration_steps):
            calibration.zero_grad()
            loss = loss_fn(network.heads.bias + fit_prior * network.prior_scale, fit_targets)
            loss.backward()
            calibration.step()

    # 2. Everything, from there; the starting point competes too: a run that only made things worse
    #    returns the (calibrated) start.
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=weight_decay)
    best_score = validation_score() if n_valid else (0.0, float("inf"))
    best_state, stale, epochs = network.state(), 0, 0
    steps = start.steps if warm else 0
    # A day of demo traffic is a few hundred cards, i.e. a few mini-batches an epoch: count patience and the
    # epoch cap in optimiser steps too, so a small set still gets enough steps to move off the start.
    per_epoch = max(1, -(-len(train_idx) // batch_size))
    patience = max(PATIENCE, -(-PATIENCE_STEPS // per_epoch))
    out_of_time = False
    for _ in range(max(max_epochs, -(-MIN_STEPS // per_epoch))):
        network.train()
        order = rng.permutation(train_idx)
        for begin in range(0, len(order), batch_size):
            batch = torch.as_tensor(order[begin : begin + batch_size])
            optimizer.zero_grad()
            loss = loss_fn(network(inputs[batch], prior[batch]), targets[batch])
            loss.backward()
            optimizer.step()
            steps += 1
        epochs += 1
        if n_valid:
            score = validation_score()
            if better(score, best_score):
                best_score, best_state, stale = score, network.state(), 0
            else:
                stale += 1
        else:
            best_state = network.state()
        if stale >= patience:
            break
        if time.perf_counter() - began > time_budget:
            out_of_time = True
            break
    best_loss = best_score[1]
    network.restore(best_state)
    model = NeuralRanker(network.export(), network.prior_scale.detach().numpy().astype(np.float64), *gains,
                         steps=steps)
    return TrainingRun(model, epochs, time.perf_counter() - began, best_loss, warm, out_of_time)


class _Network:
    """The torch twin of NeuralRanker (built lazily so that importing this module does not load torch)."""

    def __init__(self, n_inputs: int, n_tasks: int, torch, mean: np.ndarray, scale: np.ndarray) -> None:  # noqa: ANN001
        sizes = (n_inputs, *HIDDEN)
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.scale = torch.as_tensor(scale, dtype=torch.float32)
        self.hidden = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.heads = torch.nn.Linear(HIDDEN[-1], n_tasks)
        torch.nn.init.zeros_(self.heads.weight)  # untrained, the network is exactly the prior
        torch.nn.init.zeros_(self.heads.bias)
        self.prior_scale = torch.nn.Parameter(torch.ones(n_tasks))
        self.modules = torch.nn.ModuleList([*self.hidden, self.heads])
        self.torch = torch

    def parameters(self):  # noqa: ANN201
        return [*self.modules.parameters(), self.prior_scale]

    def train(self) -> None:
        self.modules.train()

    def eval(self) -> None:
        self.modules.eval()

    def __call__(self, x, prior):  # noqa: ANN001, ANN204
        h = (x - self.mean) / self.scale
        for layer in self.hidden:
            h = self.torch.relu(layer(h))
        return self.heads(h) + prior * self.prior_scale

    def state(self) -> list:
        return [p.detach().clone() for p in self.parameters()]

    def restore(self, state: list) -> None:
        with self.torch.no_grad():
            for p, saved in zip(self.parameters(), state, strict=True):
                p.copy_(saved)

    def load(self, model: NeuralRanker, torch) -> None:  # noqa: ANN001
        with torch.no_grad():
            layers = list(model.layers)
            w0, b0 = layers[0]  # stored with the input scaling folded in: unfold it for this run's scaling
            layers[0] = (w0 * self.scale.numpy()[None, :], b0 + w0 @ self.mean.numpy())
            for layer, (w, b) in zip([*self.hidden, self.heads], layers, strict=True):
                layer.weight.copy_(torch.as_tensor(w))
                layer.bias.copy_(torch.as_tensor(b))
            self.prior_scale.copy_(torch.as_tensor(model.prior_scale, dtype=torch.float32))

    def export(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Layers for NeuralRanker, with the input scaling folded into the first: W' = W / s, b' = b - W' m."""
        layers = [(layer.weight.detach().numpy().astype(np.float64), layer.bias.detach().numpy().astype(np.float64))
                  for layer in [*self.hidden, self.heads]]
        w0, b0 = layers[0]
        w0 = w0 / self.scale.numpy()[None, :]
        layers[0] = (w0, b0 - w0 @ self.mean.numpy())
        return layers
