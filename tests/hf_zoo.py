"""Real architectures, tiny: Hugging Face models built from configs (random weights, nothing
downloaded) plus the torch built-ins and odd models that broke layerscope on real models.

Each entry is a ``Case``: ``build()`` gives ``(model, args, kwargs)`` for ``model(*args, **kwargs)``
and says how to read the output (``output=``) and which target to explain. Shared by
``tests/test_zoo.py`` and ``bench/graph.py``.

>>> case = CASES["bert"]
>>> model, args, kwargs = case.build()
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from torch import nn

Built = tuple[nn.Module, tuple[Any, ...], dict[str, Any]]


@dataclass
class Case:
    name: str
    family: str
    build: Callable[[], Built]
    # what ls.attribute / ls.saliency explain: which output, which class
    output: Any = "logits"
    target: Any = 0
    hf: bool = True
    # keyword arguments for saliency / attribute beyond the model's (embedding=, layer=, ...)
    attribute_kw: dict[str, Any] = field(default_factory=dict)
    slow: bool = False


def _seed() -> torch.Generator:
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)


def _ids(vocab: int, n: int = 2, length: int = 6, low: int = 3) -> torch.Tensor:
    return torch.randint(low, vocab, (n, length), generator=torch.Generator().manual_seed(1))


def _text(small: dict[str, Any]) -> dict[str, Any]:
    return {
        "vocab_size": 64,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 32,
        **small,
    }


def bert() -> Built:
    from transformers import BertConfig, BertForSequenceClassification

    _seed()
    model = BertForSequenceClassification(BertConfig(**_text({}), num_labels=3)).eval()
    ids = _ids(64)
    return model, (ids,), {"attention_mask": torch.ones_like(ids)}


def gpt2() -> Built:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    _seed()
    cfg = GPT2Config(
        vocab_size=64,
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=32,
        num_labels=3,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    return GPT2ForSequenceClassification(cfg).eval(), (_ids(64),), {}


def llama() -> Built:
    from transformers import LlamaConfig, LlamaForSequenceClassification

    _seed()
    cfg = LlamaConfig(**_text({"num_key_value_heads": 1}), num_labels=3, pad_token_id=0)
    return LlamaForSequenceClassification(cfg).eval(), (_ids(64),), {}


def t5() -> Built:
    from transformers import T5Config, T5ForConditionalGeneration

    _seed()
    cfg = T5Config(
        vocab_size=64,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
    )
    model = T5ForConditionalGeneration(cfg).eval()
    return model, (_ids(64),), {"decoder_input_ids": _ids(64, length=4)}


def bart() -> Built:
    from transformers import BartConfig, BartForConditionalGeneration

    _seed()
    cfg = BartConfig(
        vocab_size=64,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=32,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    model = BartForConditionalGeneration(cfg).eval()
    return model, (_ids(64),), {"decoder_input_ids": _ids(64, length=4)}


def vit() -> Built:
    from transformers import ViTConfig, ViTForImageClassification

    _seed()
    cfg = ViTConfig(
        image_size=16,
        patch_size=4,
        num_channels=3,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return ViTForImageClassification(cfg).eval(), (x,), {}


def resnet() -> Built:
    from transformers import ResNetConfig, ResNetForImageClassification

    _seed()
    cfg = ResNetConfig(
        num_channels=3,
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        num_labels=3,
    )
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return ResNetForImageClassification(cfg).eval(), (x,), {}


def convnext() -> Built:
    from transformers import ConvNextConfig, ConvNextForImageClassification

    _seed()
    cfg = ConvNextConfig(
        num_channels=3,
        num_stages=2,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        num_labels=3,
        patch_size=2,
    )
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return ConvNextForImageClassification(cfg).eval(), (x,), {}


def wav2vec2() -> Built:
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    _seed()
    cfg = Wav2Vec2Config(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(4, 2),
        conv_kernel=(8, 4),
        num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2,
        num_labels=3,
        classifier_proj_size=8,
        do_stable_layer_norm=False,
        mask_time_prob=0.0,
    )
    wave = torch.randn(2, 200, generator=torch.Generator().manual_seed(1))
    return Wav2Vec2ForSequenceClassification(cfg).eval(), (wave,), {}


def whisper() -> Built:
    from transformers import WhisperConfig, WhisperForAudioClassification

    _seed()
    cfg = WhisperConfig(
        vocab_size=64,
        num_mel_bins=8,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=16,
        max_target_positions=16,
        num_labels=3,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    mel = torch.randn(2, 8, 32, generator=torch.Generator().manual_seed(1))
    return WhisperForAudioClassification(cfg).eval(), (mel,), {}


def mixtral() -> Built:
    from transformers import MixtralConfig, MixtralForSequenceClassification

    _seed()
    cfg = MixtralConfig(
        **_text({"num_key_value_heads": 1}),
        num_local_experts=4,
        num_experts_per_tok=2,
        num_labels=3,
        pad_token_id=0,
    )
    return MixtralForSequenceClassification(cfg).eval(), (_ids(64),), {}


def mamba() -> Built:
    from transformers import MambaConfig, MambaForCausalLM

    _seed()
    cfg = MambaConfig(vocab_size=64, hidden_size=16, state_size=4, num_hidden_layers=2, expand=2)
    return MambaForCausalLM(cfg).eval(), (_ids(64),), {}


def clip() -> Built:
    from transformers import CLIPConfig, CLIPModel

    _seed()
    cfg = CLIPConfig(
        text_config={
            "vocab_size": 64,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return CLIPModel(cfg).eval(), (_ids(64),), {"pixel_values": pixels}


def videomae() -> Built:
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    _seed()
    cfg = VideoMAEConfig(
        image_size=16,
        patch_size=8,
        num_frames=4,
        tubelet_size=2,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    # VideoMAE takes (N, T, C, H, W)
    video = torch.randn(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return VideoMAEForVideoClassification(cfg).eval(), (video,), {}


# -- torch built-ins and odd models --


def mha() -> Built:
    _seed()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
    return nn.MultiheadAttention(16, 2, batch_first=True).eval(), (x, x, x), {}


def transformer_encoder_padded() -> Built:
    _seed()
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 2).eval()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, 3:] = True
    return model, (x,), {"src_key_padding_mask": mask}


def transformer() -> Built:
    _seed()
    model = nn.Transformer(16, 2, 1, 1, 32, dropout=0.0, batch_first=True).eval()
    g = torch.Generator().manual_seed(1)
    return model, (torch.randn(2, 5, 16, generator=g), torch.randn(2, 3, 16, generator=g)), {}


def lstm() -> Built:
    _seed()
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(1))
    return nn.LSTM(8, 12, batch_first=True).eval(), (x,), {}


def gru() -> Built:
    _seed()
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(1))
    return nn.GRU(8, 12, batch_first=True).eval(), (x,), {}


class SequenceClassifier(nn.Module):
    """(N, L, D) feature sequences -> classes through an LSTM: saliency over token x feature."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 12, batch_first=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm(x)
        return self.head(seq[:, -1])


def sequence_classifier() -> Built:
    _seed()
    x = torch.randn(2, 6, 8, generator=torch.Generator().manual_seed(1))
    return SequenceClassifier().eval(), (x,), {}


class AudioConv(nn.Module):
    """(N, C, L) signals -> classes through a Conv1d front end (as audio models start)."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, 8, 5, stride=2, padding=2)
        self.conv2 = nn.Conv1d(8, 8, 3, stride=2, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(h.mean(-1))


def audio_conv() -> Built:
    _seed()
    t = torch.linspace(0, 1, 64)
    wave = torch.stack([torch.sin(2 * torch.pi * 5 * t), torch.sin(2 * torch.pi * 9 * t)])
    return AudioConv().eval(), (wave[:, None],), {}


class Video3d(nn.Module):
    """(N, C, T, H, W) clips -> classes through Conv3d."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 6, 3, padding=1)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean((2, 3, 4)))


def video3d() -> Built:
    _seed()
    return (
        Video3d().eval(),
        (torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(1)),),
        {},
    )


def weight_normed() -> Built:
    from torch.nn.utils.parametrizations import weight_norm

    _seed()
    model = nn.Sequential(weight_norm(nn.Linear(16, 32)), nn.ReLU(), nn.Linear(32, 3)).eval()
    return model, (torch.randn(2, 16, generator=torch.Generator().manual_seed(1)),), {}


def quantized() -> Built:
    import warnings

    _seed()
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return q, (torch.randn(2, 16, generator=torch.Generator().manual_seed(1)),), {}


class SharedEmbeddingSeq2Seq(nn.Module):
    """An encoder-decoder sharing one embedding for source and target tokens (called twice)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.encoder = nn.Linear(8, 8)
        self.decoder = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        memory = torch.tanh(self.encoder(self.embed(src))).mean(1, keepdim=True)
        out = torch.tanh(self.decoder(self.embed(tgt)) + memory)
        return self.head(out.mean(1))


def shared_seq2seq() -> Built:
    _seed()
    g = torch.Generator().manual_seed(1)
    # same length: swapping every call's embedding output would run without an error
    src, tgt = torch.randint(0, 20, (2, 5), generator=g), torch.randint(0, 20, (2, 5), generator=g)
    return SharedEmbeddingSeq2Seq().eval(), (src,), {"tgt": tgt}


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case("bert", "encoder", bert),
        Case("gpt2", "decoder", gpt2),
        Case("llama", "decoder", llama),
        Case("t5", "encoder-decoder", t5, target=(0, 5)),
        Case("bart", "encoder-decoder", bart, target=(0, 5)),
        Case("vit", "vision transformer", vit),
        Case("resnet", "convnet", resnet),
        Case("convnext", "convnet", convnext),
        Case("wav2vec2", "audio", wav2vec2),
        Case("whisper", "audio", whisper),
        Case("mixtral", "mixture of experts", mixtral),
        Case("mamba", "state space", mamba, target=(0, 5), slow=True),
        Case("clip", "multimodal", clip, output="logits_per_text"),
        Case("videomae", "video", videomae),
        Case("mha", "torch built-in", mha, output=0, target=(0, 0), hf=False),
        Case(
            "transformer_encoder_padded",
            "torch built-in",
            transformer_encoder_padded,
            output=None,
            target=(0, 0),
            hf=False,
        ),
        Case("transformer", "torch built-in", transformer, output=None, target=(0, 0), hf=False),
        Case("lstm", "torch built-in", lstm, output=0, target=(0, 0), hf=False),
        Case("gru", "torch built-in", gru, output=0, target=(0, 0), hf=False),
        Case("sequence_classifier", "odd", sequence_classifier, output=None, hf=False),
        Case("audio_conv", "odd", audio_conv, output=None, hf=False),
        Case("video3d", "odd", video3d, output=None, hf=False),
        Case("weight_norm", "odd", weight_normed, output=None, hf=False),
        Case("quantized", "odd", quantized, output=None, hf=False),
        Case("shared_seq2seq", "odd", shared_seq2seq, output=None, hf=False),
    ]
}
