"""Test helpers: tiny_model."""

from __future__ import annotations

from pathlib import Path

import torch

from classifier.model import ModelSpec

WORDS = (  # noqa: SIM905
    "the order never arrived i'll sue you my account was hacked thanks great awful help "
    "el pedido nunca llegó los voy a demandar me quiero morir gracias genial pésimo ayuda query: @user http"
).split()


def make_tiny_model(root: Path, *, trained: bool = False) -> Path:
    """A randomly initialised 2-layer BERT + word-level tokenizer + manifest, written to ``root``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    enc_dir = root / "encoder"
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for w in WORDS:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    fast.model_max_length = 512
    fast.save_pretrained(enc_dir)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=1,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(enc_dir)
    ModelSpec(model_id="tiny-test", base={"kind": "dir", "path": "encoder"}, trained=trained).write(root)
    return root
