"""Tile embeddings from any encoder file (timm, torchvision, TorchScript, the shipped default) and
the per-slide embedding artefacts. See docs/embeddings.md.
"""

from immunodig.embeddings.encoder import Encoder, default_encoder_path, load_encoder
from immunodig.embeddings.metadata import EncoderMetadata
from immunodig.embeddings.slide_embeddings import embed_slide, read_embedding_record, read_slide_embeddings

__all__ = [
    "Encoder",
    "EncoderMetadata",
    "default_encoder_path",
    "embed_slide",
    "load_encoder",
    "read_embedding_record",
    "read_slide_embeddings",
]
