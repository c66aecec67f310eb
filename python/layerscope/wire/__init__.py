"""Turning tensors into what crosses the wire: binary payloads, tiles, quantized forms."""

from .codec import (
    array_serialization,
    check_array,
    decode_array,
    describe,
    encode_array,
    payload_serialization,
    to_numpy,
)

__all__ = [
    "array_serialization",
    "check_array",
    "decode_array",
    "describe",
    "encode_array",
    "payload_serialization",
    "to_numpy",
]
