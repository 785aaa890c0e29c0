"""The product's pooled features for every text of a training pool, computed once and cached on disk.

Why: refitting the heads (``classifier/heads_only.py``) over a frozen encoder needs the features of ~75k tweets
many times over (every cross-validation fold of every candidate); computing them once with the runtime the
product uses (the int8 ONNX export) makes each fit a few seconds of linear algebra. The cache lives outside
the repository (``~/.cache/escucha/features/`` or ``$ESCUCHA_MODEL_CACHE/features/``), keyed by the encoder
(the model directory's export key) and by the pool file's content, so a changed file or model never reads stale
features. Extraction writes one part file per chunk, so a killed run resumes where it stopped.

``python -m classifier.features --data-dir DIR [--model MODEL_DIR]`` fills the cache for every pool.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

CHUNK = 2048  # rows per part file: a killed run loses at most this much work
# The pools the heads are fitted and cross-validated on. Never the validation (``*_val``) or test sets.
XLMT_LANGS = ("ar", "de", "en", "es", "fr", "hi", "it", "pt")
POOL_FILES = (  # Spanish first, the 49.6k SemEval tweets last: a partial cache already serves the languages first
    "sentiment/tass2020_es_train.tsv",
    *(f"sentiment/xlmt_{lang}_train.tsv" for lang in XLMT_LANGS),
    "complaints/complaints_train.tsv",
    "sentiment/semeval_en_train.tsv",
)

Pool = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def features_root() -> Path:
    """Where feature caches live: ``<model cache>/features``."""
    from classifier.e5_weights import cache_root

    return cache_root() / "features"


def cache_file(encoder_key: str, path: Path) -> Path:
    """The ``.npy`` holding the features of the pool file ``path`` under the encoder ``encoder_key``."""
    return features_root() / encoder_key / f"{path.stem}-{file_digest(path)}.npy"


def pool_texts(path: Path) -> list[str]:
    """The texts of a pool file, in the row order ``classifier.train.read_tsv`` gives (the cache's row order)."""
    from classifier.train import read_tsv

    rows = read_tsv(path)
    if rows and "text" not in rows[0]:
        raise ValueError(f"{path}: no 'text' column in its header row")
    return [r["text"] for r in rows]


def encode_batches(texts: Sequence[str], tokenizer: Any, spec: Any, pool: Pool, *, batch_size: int = 32) -> np.ndarray:
    """Pooled features [n, hidden] of ``texts`` in input order, as the scorer tokenises them."""
    from classifier.refit import encode_padded

    return encode_padded(texts, tokenizer, spec, pool, batch_size=batch_size).numpy().astype(np.float32, copy=False)


def extract(
    path: Path,
    target: Path,
    tokenizer: Any,
    spec: Any,
    pool: Pool,
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Features of every text in ``path``, written to ``target``; resumes from the part files a killed run left."""
    if target.is_file():
        return np.load(target)
    texts = pool_texts(path)
    parts = target.parent / (target.stem + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    pieces: list[np.ndarray] = []
    for number, start in enumerate(range(0, len(texts), chunk)):
        part = parts / f"{number:05d}.npy"
        batch = texts[start : start + chunk]
        if part.is_file():
            piece = np.load(part)
            if piece.shape[0] != len(batch):  # a part from another version of the file: redo it
                part.unlink()
        if not part.is_file():
            began = time.monotonic()
            piece = encode_batches(batch, tokenizer, spec, pool)
            staged = part.with_suffix(".tmp.npy")
            np.save(staged, piece)
            os.replace(staged, part)  # atomic: a part file on disk is always whole
            log.info(
                "%s: rows %d-%d of %d, %.0f texts/s",
                path.name,
                start,
                start + len(batch),
                len(texts),
                len(batch) / max(time.monotonic() - began, 1e-9),
            )
        pieces.append(piece)
        if progress is not None:
            progress(len(batch))
    features = np.concatenate(pieces) if pieces else np.zeros((0, 0), dtype=np.float32)
    staged = target.with_suffix(".tmp.npy")
    np.save(staged, features)
    os.replace(staged, target)
    for part in parts.glob("*.npy"):
        part.unlink()
    parts.rmdir()
    return features


def encoder_key(model_dir: Path) -> str:
    """Names the encoder whose features are cached: the model directory's name and its export key."""
    from classifier import onnx_backend

    return f"{model_dir.resolve().name}-{onnx_backend.cache_key(model_dir)}"


def production_pool_for(model_dir: Path) -> tuple[Pool, Any, Any]:
    """(pool, tokenizer, spec) computing features as the product does: the cached int8 export of ``model_dir``."""
    from classifier import onnx_backend
    from classifier.model import load_spec_and_tokenizer

    spec, tokenizer = load_spec_and_tokenizer(model_dir)
    runner = onnx_backend.load_runner(model_dir)
    return runner.pool, tokenizer, spec


def load_or_extract(data_dir: Path, model_dir: Path, files: Sequence[str] = POOL_FILES) -> dict[str, np.ndarray]:
    """Features for each pool file (by its path under ``data_dir``), extracting whatever is not cached yet."""
    key = encoder_key(model_dir)
    paths = {name: data_dir / name for name in files}
    absent = [name for name, p in paths.items() if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{data_dir}: missing pool files {absent}")
    out: dict[str, np.ndarray] = {}
    todo = {name: p for name, p in paths.items() if not cache_file(key, p).is_file()}
    for name, p in paths.items():
        if name not in todo:
            out[name] = np.load(cache_file(key, p))
    if todo:
        from tqdm import tqdm

        pool, tokenizer, spec = production_pool_for(model_dir)
        total = sum(len(pool_texts(p)) for p in todo.values())
        with tqdm(total=total, desc="features", unit="text", file=sys.stderr) as bar:
            for name, p in todo.items():
                out[name] = extract(p, cache_file(key, p), tokenizer, spec, pool, progress=bar.update)
    return {name: out[name] for name in files}  # the files' order, however much was cached


def main(argv: list[str] | None = None) -> None:
    """``python -m classifier.features --data-dir DIR [--model DIR]``: fill the feature cache for every pool."""
    from classifier.registry import WEIGHTS_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("ESCUCHA_DATA_DIR"))
    parser.add_argument("--model", type=Path, default=WEIGHTS_DIR / "escucha-e5s6-multitask-v1")
    args = parser.parse_args(argv)
    if args.data_dir is None:
        parser.error("--data-dir or $ESCUCHA_DATA_DIR is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    began = time.monotonic()
    feats = load_or_extract(Path(args.data_dir), Path(args.model))
    for name, x in feats.items():
        log.info("%s: %s", name, x.shape)
    log.info("done in %.0f s; cache %s", time.monotonic() - began, features_root() / encoder_key(Path(args.model)))


if __name__ == "__main__":
    main()
