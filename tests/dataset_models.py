"""Real models for the dataset-level tests: the digits CNN trained a few epochs (cached per
session), and a tiny token transformer that classifies sequences by their first token."""

from __future__ import annotations

import functools

import torch
from torch import nn

import digits


@functools.cache
def trained_digits(epochs: int = 4, width: int = 8) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """``(model, (x_train, y_train, x_test, y_test))``: the digits CNN after ``epochs`` epochs."""
    torch.manual_seed(0)
    data = digits.load()
    model = digits.DigitsCNN(width=width)
    digits.train(model, epochs, data=data, batch_size=64, lr=3e-3)
    model.eval()
    return model, data


class TinyTransformer(nn.Module):
    """Embedding, one encoder layer, mean-pool, linear head: tokens ``(N, T)`` -> ``(N, classes)``."""

    def __init__(self, vocab: int = 20, dim: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.encoder = nn.TransformerEncoderLayer(dim, 2, 32, dropout=0.0, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU())
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.mlp(self.encoder(self.embed(tokens)))
        return self.head(h.mean(1))


def tokens(n: int = 64, length: int = 12, vocab: int = 20, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, length), generator=g)
