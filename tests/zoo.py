"""A zoo of small models built in code (no downloads), shared by the tests and the benchmarks.

Each ``make_*`` function returns ``(model, inputs)`` or ``(model, inputs, kwargs)`` ready for
``model(*inputs, **kwargs)``; weights come from a fixed seed so runs compare.

>>> model, (x,) = make_mlp()
>>> model(x).shape
torch.Size([4, 3])
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HTML_NAME = "<img src=x onerror=alert(1)>"


def _seeded() -> torch.Generator:
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)


# -- the classics --


class MLP(nn.Module):
    def __init__(self, sizes: tuple[int, ...] = (8, 16, 16, 3)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def make_mlp() -> tuple[nn.Module, tuple[Tensor]]:
    g = _seeded()
    return MLP(), (torch.randn(4, 8, generator=g),)


class SmallCNN(nn.Module):
    """Conv-BatchNorm-ReLU twice, pooling, a linear head: BatchNorm stats must survive a trace."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def make_cnn() -> tuple[nn.Module, tuple[Tensor]]:
    g = _seeded()
    return SmallCNN(), (torch.randn(3, 1, 8, 8, generator=g),)


class BasicBlock(nn.Module):
    """ResNet's basic block: two convolutions and a skip addition (with a 1x1 projection if needed)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2), BasicBlock(16, 16))
        self.fc = nn.Linear(16, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(x.mean(dim=(2, 3)))


def make_resnet() -> tuple[nn.Module, tuple[Tensor]]:
    g = _seeded()
    return TinyResNet(), (torch.randn(2, 3, 8, 8, generator=g),)


class LSTMTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 12, batch_first=True)
        self.out = nn.Linear(12, 4)

    def forward(self, tokens: Tensor) -> Tensor:
        seq, (h, _c) = self.lstm(self.embed(tokens))
        return self.out(seq[:, -1] + h[0])


def make_lstm() -> tuple[nn.Module, tuple[Tensor]]:
    g = _seeded()
    return LSTMTagger(), (torch.randint(0, 20, (2, 5), generator=g),)


def make_transformer(layers: int = 3) -> tuple[nn.Module, tuple[Tensor]]:
    g = _seeded()
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
    model = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
    return model, (torch.randn(2, 5, 16, generator=g),)


# -- inputs and outputs of every shape --


class DictInOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(
        self, batch: dict[str, Tensor], scale: float = 1.0, mask: Tensor | None = None
    ) -> dict[str, Any]:
        ya, yb = self.a(batch["left"]), self.b(batch["right"])
        total = (ya + yb) * scale
        if mask is not None:
            total = total * mask
        return {"sum": total, "parts": [ya, yb], "none": None}


def make_dict_io() -> tuple[nn.Module, tuple[dict[str, Tensor]], dict[str, Any]]:
    g = _seeded()
    batch = {"left": torch.randn(2, 4, generator=g), "right": torch.randn(2, 4, generator=g)}
    return DictInOut(), (batch,), {"scale": 2.0, "mask": torch.ones(2, 4)}


@dataclass
class PlainOutput:
    logits: Tensor
    hidden: Tensor | None = None


@dataclass
class FakeModelOutput(OrderedDict):
    """Like transformers' ModelOutput: a dataclass *and* an OrderedDict holding the non-None fields."""

    logits: Tensor | None = None
    last_hidden_state: Tensor | None = None
    attentions: Tensor | None = None

    def __post_init__(self) -> None:
        for name in ("logits", "last_hidden_state", "attentions"):
            value = getattr(self, name)
            if value is not None:
                self[name] = value


class OutputKinds(nn.Module):
    """Returns a tensor, tuple, list, dict, dataclass, ModelOutput or None, as ``kind`` says."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.body = nn.Linear(4, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Any:
        h = torch.tanh(self.body(x))
        y = self.head(h)
        return {
            "tensor": lambda: y,
            "tuple": lambda: (y, h),
            "list": lambda: [y, (h, None)],
            "dict": lambda: {"logits": y, "hidden": h},
            "dataclass": lambda: PlainOutput(y, h),
            "model_output": lambda: FakeModelOutput(logits=y, last_hidden_state=h),
            "none": lambda: None,
        }[self.kind]()


class SharedTwice(nn.Module):
    """Calls ``enc`` twice (weight sharing) and ties ``head.weight`` to ``embed.weight``."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.enc = nn.Linear(6, 6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens)
        x = torch.relu(self.enc(x))
        x = self.enc(x)
        return self.head(x)


def make_shared() -> tuple[nn.Module, tuple[Tensor]]:
    g = _seeded()
    return SharedTwice(), (torch.randint(0, 10, (2, 3), generator=g),)


class AllFunctional(nn.Module):
    """No submodules: parameters used through torch functions and operators only."""

    def __init__(self) -> None:
        super().__init__()
        g = _seeded()
        self.w1 = nn.Parameter(torch.randn(8, 6, generator=g))
        self.w2 = nn.Parameter(torch.randn(6, 6, generator=g))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x @ self.w1)
        a, b = h.chunk(2, dim=-1)
        h = torch.cat([a * b, a, b], dim=-1).view(x.shape[0], -1)
        h = h[:, :6] @ self.w2.T
        return torch.softmax(h, dim=-1)


def make_functional() -> tuple[nn.Module, tuple[Tensor]]:
    g = _seeded()
    return AllFunctional(), (torch.randn(3, 8, generator=g),)


class Branchy(nn.Module):
    """Data-dependent control flow: which branch runs depends on the input's values."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Linear(4, 4)
        self.neg = nn.Sequential(nn.Linear(4, 4), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 0:
            return self.pos(x)
        for _ in range(int(x.abs().sum().item()) % 3 + 1):
            x = self.neg(x)
        return x


class ZeroParams(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.GELU()
        self.pool = nn.AvgPool1d(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(x)) * 2


class HtmlNamed(nn.Module):
    """A module whose child is named like an XSS payload: it must stay a plain string."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module(HTML_NAME, nn.Linear(3, 3))
        self.after = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.after(getattr(self, HTML_NAME)(x))


class Raising(nn.Module):
    """``inner.fail`` raises a ValueError in the second call of its forward."""

    class Fails(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: Tensor) -> Tensor:
            y = self.lin(x)
            if y.shape[0] == 2:
                raise ValueError("deliberate failure for the test")
            return y

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
        self.fail = Raising.Fails()

    def forward(self, x: Tensor) -> Tensor:
        return self.fail(self.inner(x))


# -- a nanoGPT-style transformer: ~200 traced ops per block, ~10,000 at 48 blocks --


class Head(nn.Module):
    def __init__(self, n_embd: int, head_size: int, block_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(0.0)

    def forward(self, x: Tensor) -> Tensor:
        _, t, _ = x.shape
        k, q = self.key(x), self.query(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
        wei = wei.masked_fill(self.tril[:t, :t] == 0, float("-inf"))
        wei = self.dropout(F.softmax(wei, dim=-1))
        return wei @ self.value(x)


class MultiHead(nn.Module):
    def __init__(self, n_embd: int, heads: int, block_size: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            [Head(n_embd, n_embd // heads, block_size) for _ in range(heads)]
        )
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(0.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))


class Block(nn.Module):
    def __init__(self, n_embd: int, heads: int, block_size: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.sa = MultiHead(n_embd, heads, block_size)
        self.ln2 = nn.LayerNorm(n_embd)
        self.ffwd = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(0.0)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))


class GPT(nn.Module):
    def __init__(
        self,
        blocks: int = 48,
        heads: int = 16,
        n_embd: int = 64,
        vocab: int = 100,
        block_size: int = 32,
    ) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, n_embd)
        self.pos = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList([Block(n_embd, heads, block_size) for _ in range(blocks)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab)

    def forward(self, idx: Tensor) -> Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def make_gpt(blocks: int = 48, heads: int = 16, seq: int = 16) -> tuple[nn.Module, tuple[Tensor]]:
    """``make_gpt()`` traces to ~9,800 nodes; ``make_gpt(5)`` ~1,000; ``make_gpt(1, 7)`` ~100."""
    g = _seeded()
    model = GPT(blocks, heads, n_embd=4 * heads).eval()
    return model, (torch.randint(0, 100, (2, seq), generator=g),)
