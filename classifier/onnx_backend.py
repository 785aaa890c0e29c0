"""ONNX Runtime backend: the fine-tuned model exported once to ONNX with int8 weights, cached beside the base.

Why: on 2 CPU cores PyTorch runs the 6-layer encoder at ~100 tweets/s in fp32 and ~165 with its dynamic
int8; ONNX Runtime's int8 kernels run the same graph faster, and the process never holds the fp32
embedding matrix (the largest tensor) once the cached file exists, so memory drops by ~1 GB.

The export is derived data: it is rebuilt whenever the model directory, the exporter or ONNX Runtime
changes (the cache key hashes all of them), and written atomically so concurrent workers are safe.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifier.model import DELTA, MANIFEST, MultiHead, lineage

log = logging.getLogger(__name__)

EXPORT_VERSION = "2"  # bump when the export or quantisation recipe changes
OUTPUTS = ("sentiment", "complaint", "anger")
POOLED = "pooled"  # also exported: the head refit fits on the features the product really computes


def available() -> bool:
    """Tell whether onnxruntime and onnx (for the one-off quantisation) import."""
    import importlib.util

    # Looked up, not imported: a scoring process never needs onnx itself once the export is cached.
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def cache_key(directory: Path) -> str:
    """A digest of everything the exported file depends on."""
    import onnxruntime

    digest = hashlib.sha256()
    for part in (EXPORT_VERSION, onnxruntime.__version__, torch.__version__):
        digest.update(part.encode() + b"\0")
    for model_dir in lineage(directory):  # a heads-only version is its parent's weights plus its own delta
        for name in (MANIFEST, DELTA):
            path = model_dir / name
            digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()[:16]


def cache_path(directory: Path) -> Path:
    """Where the int8 ONNX file for the model in ``directory`` lives."""
    from classifier.e5_weights import cache_root

    return cache_root() / "onnx" / f"{directory.resolve().name}-{cache_key(directory)}.int8.onnx"


class _Outputs(torch.nn.Module):
    """The multi-head model with tuple outputs, the shape ``torch.onnx.export`` wants."""

    def __init__(self, model: MultiHead) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pooled = self.model.pool(input_ids, attention_mask)
        heads = (
            self.model.sentiment(pooled),
            self.model.complaint(pooled).squeeze(-1),
            self.model.anger(pooled).squeeze(-1),
        )
        return (*heads, pooled)


def export_int8(model: MultiHead, target: Path, *, per_channel: bool = False) -> Path:
    """Export ``model`` to ONNX, quantise its weights to int8 and move the result to ``target`` atomically."""
    return export_module_int8(_Outputs(model.eval()), [*OUTPUTS, POOLED], target, per_channel=per_channel)


def export_module_int8(module: torch.nn.Module, outputs: list[str], target: Path, *, per_channel: bool = False) -> Path:
    """Export ``module`` (ids, mask) -> ``outputs`` to ONNX with int8 weights, written to ``target`` atomically."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="escucha-onnx-", dir=target.parent) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        example = torch.ones((2, 8), dtype=torch.long)
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                (example, example),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=outputs,
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
                opset_version=17,
                dynamo=False,
            )
        staged = Path(tmp) / "model.int8.onnx"
        quantize_dynamic(
            str(fp32),
            str(staged),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(staged, target)
    return target


def session_for(path: Path, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for ``path`` with the product's thread settings."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep instead of spinning: a worker shares its cores with the outbox, the database and a
    # second worker, and the spinning threads of its two sessions took CPU they needed (a 90 s pipeline bench at
    # 50 posts/s on 2 cores: p95 to assignment 42 s spinning, 20 s not).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """Runs the exported model; called like ``MultiHead`` (ids, mask) and returns its logits by head."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        self.path = path
        self.session = session_for(path, threads=threads)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        outs: list[Any] = self.session.run(list(OUTPUTS), self._feeds(input_ids, attention_mask))
        return {name: torch.from_numpy(np.asarray(value)) for name, value in zip(OUTPUTS, outs, strict=True)}

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The mean-pooled encoder output [batch, hidden], as the int8 model computes it."""
        [pooled] = self.session.run([POOLED], self._feeds(input_ids, attention_mask))
        return torch.from_numpy(np.asarray(pooled))

    @staticmethod
    def _feeds(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, np.ndarray]:
        return feeds(input_ids.numpy(), attention_mask.numpy())


def feeds(input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
    """The exported graphs' inputs, as the int64 arrays they were traced with."""
    return {
        "input_ids": input_ids.astype(np.int64, copy=False),
        "attention_mask": attention_mask.astype(np.int64, copy=False),
    }


def load_runner(directory: Path, model: MultiHead | None = None, *, threads: int | None = None) -> OnnxRunner:
    """The cached int8 runner for ``directory``, exporting ``model`` (or, in a child process, the directory's)."""
    path = cache_path(directory)
    if not path.is_file():
        log.info("exporting %s to ONNX int8 at %s (one-off, ~30 s)", directory.name, path)
        if model is not None:
            export_int8(model, path)
        else:
            # A child process does the export so this one never holds the fp32 model: the export
            # peaks at several GB, and a worker's resident memory is what the capacity plan counts.
            subprocess.run([sys.executable, "-m", "classifier.onnx_backend", str(directory)], check=True)  # noqa: S603
    return OnnxRunner(path, threads=threads)


def main(argv: list[str] | None = None) -> None:
    """``python -m classifier.onnx_backend MODEL_DIR``: write the cached int8 export for MODEL_DIR."""
    from classifier.model import load_model

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m classifier.onnx_backend MODEL_DIR")
    directory = Path(args[0])
    print(export_int8(load_model(directory)[0], cache_path(directory)), file=sys.stderr)  # stdout may carry JSON


if __name__ == "__main__":
    main()
