"""Small models for the attribution tests and benchmark (no torchvision: built by hand)."""

from __future__ import annotations

import torch
from torch import nn


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 16), nn.Softplus(), nn.Linear(16, 5)
    )


class SmallCNN(nn.Module):
    """Conv stack for Grad-CAM (the last Conv2d is ``features.3``); optional BatchNorm + Dropout."""

    def __init__(self, classes: int = 5, width: int = 8, norm: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.BatchNorm2d(width) if norm else nn.Identity(),
            nn.Softplus(),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2),
            nn.Softplus(),
        )
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(2 * width * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(self.features(x)).flatten(1)))


class TinyTransformer(nn.Module):
    """Token classifier: embedding + learned positions, encoder layers, mean pool, linear head."""

    def __init__(
        self,
        vocab: int = 50,
        dim: int = 16,
        heads: int = 2,
        layers: int = 2,
        length: int = 12,
        classes: int = 3,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, length, dim) * 0.1)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(ids) + self.pos[:, : ids.shape[1]])
        return self.head(h.mean(1))


class TinyViT(nn.Module):
    """Patch conv -> CLS + 4x4 patch tokens -> encoder layer -> CLS head (Grad-CAM on tokens)."""

    def __init__(self, dim: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.block = nn.TransformerEncoderLayer(dim, 2, 2 * dim, dropout=0.0, batch_first=True)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], 1)
        return self.head(self.block(tokens)[:, 0])


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(4, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.a(x) * self.b(y)))


class DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(10, 5)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(x), "hidden": x}


class HFStyleAttention(nn.Module):
    """Returns (output, weights (N, H, T, T)) like a Hugging Face attention module."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, t, d = h.shape
        q, k, v = self.qkv(h).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        w = (q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5).softmax(-1)
        return (w @ v).transpose(1, 2).reshape(n, t, d), w


class HFStyleModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.layers = nn.ModuleList([HFStyleAttention(), HFStyleAttention()])
        self.head = nn.Linear(8, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids)
        for layer in self.layers:
            h = h + layer(h)[0]
        return self.head(h[:, 0])
