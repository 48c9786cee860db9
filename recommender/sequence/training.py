"""Training GRU4Rec with torch on CPU (one thread): every position of each user's sequence predicts the next
item with a full softmax cross-entropy over the vocabulary (tied input/output embeddings). Each user's last
item is held out; the model's recall@k on those is compared with popularity's on the same items."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .model import SequenceModel


@dataclass(frozen=True)
class SequenceRun:
    model: SequenceModel
    recall: float | None  # of each held-out last item in the model's top k
    popularity_recall: float | None  # the same for the most engaged items
    users_held_out: int
    epochs: int
    seconds: float
    loss: float


def train_gru4rec(sequences: list[list[int]], ids: list[str], *, dim: int, max_length: int, epochs: int,
                  batch_size: int, learning_rate: float, weight_decay: float, time_budget: float, seed: int,
                  recall_k: int, version: int) -> SequenceRun:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    began = time.perf_counter()
    n = len(ids)
    held = [s for s in sequences if len(s) >= 3]
    train_seqs = [s[:-1] if len(s) >= 3 else s for s in sequences]
    train_seqs = [s[-(max_length + 1) :] for s in train_seqs if len(s) >= 2]

    embedding = torch.nn.Embedding(n + 1, dim, padding_idx=n)  # row n: padding
    torch.nn.init.normal_(embedding.weight, std=0.1)
    gru = torch.nn.GRU(dim, dim, batch_first=True)
    params = [*embedding.parameters(), *gru.parameters()]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    length = max((len(s) for s in train_seqs), default=2) - 1
    inputs = np.full((len(train_seqs), length), n, dtype=np.int64)
    targets = np.full((len(train_seqs), length), -100, dtype=np.int64)  # -100: ignored by cross_entropy
    for i, s in enumerate(train_seqs):  # right-aligned: the last step of every row is its newest item
        inputs[i, length - (len(s) - 1) :] = s[:-1]
        targets[i, length - (len(s) - 1) :] = s[1:]
    inputs_t, targets_t = torch.as_tensor(inputs), torch.as_tensor(targets)
    rng = np.random.default_rng(seed)
    done, loss_value = 0, float("nan")
    for _ in range(epochs if len(train_seqs) else 0):
        order = rng.permutation(len(train_seqs))
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = torch.as_tensor(order[start : start + batch_size])
            hidden, _ = gru(embedding(inputs_t[batch]))
            logits = hidden @ embedding.weight[:n].T
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, n), targets_t[batch].reshape(-1),
                                                     ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(batch), count + len(batch)
        done += 1
        loss_value = total / max(count, 1)
        if time.perf_counter() - began > time_budget:
            break
    model = SequenceModel(
        tuple(ids), embedding.weight[:n].detach().numpy().astype(np.float32).copy(),
        gru.weight_ih_l0.detach().numpy().copy(), gru.weight_hh_l0.detach().numpy().copy(),
        gru.bias_ih_l0.detach().numpy().copy(), gru.bias_hh_l0.detach().numpy().copy(), max_length, version)
    recall, popular_recall = _held_out_recall(model, held, n, recall_k, train_seqs)
    return SequenceRun(model, recall, popular_recall, len(held), done, time.perf_counter() - began, loss_value)


def _held_out_recall(model: SequenceModel, held: list[list[int]], n: int, k: int, train_seqs: list[list[int]]
                     ) -> tuple[float | None, float | None]:
    if not held:
        return None, None
    counts = np.bincount(np.concatenate([np.array(s) for s in train_seqs]) if train_seqs else np.zeros(0, int),
                         minlength=n).astype(np.float64)
    hits = popular_hits = 0
    for s in held:
        prefix, last = s[:-1], s[-1]
        scores = model.scores(prefix)
        scores[prefix] = -np.inf  # already engaged with: not a "next" item
        top = np.argpartition(-scores, min(k, n - 1) - 1)[:k] if n > k else np.arange(n)
        hits += int(last in set(top.tolist()))
        popular = counts.copy()
        popular[prefix] = -np.inf
        top_popular = np.argpartition(-popular, min(k, n - 1) - 1)[:k] if n > k else np.arange(n)
        popular_hits += int(last in set(top_popular.tolist()))
    return hits / len(held), popular_hits / len(held)
