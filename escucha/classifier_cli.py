"""The classifier's commands: ``escucha train``, ``evaluate`` and ``score``.

Registered on the main app by ``escucha/cli.py``; torch and transformers are imported inside the
commands so that the rest of the CLI starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer

SCORE_BATCH = 64
Bf16 = Annotated[bool | None, typer.Option(help="bf16 autocast (default: when the CPU has AMX or AVX-512 BF16).")]


def corpora_or_exit(data_dir: Path | None, command: str) -> Path:
    """``--data-dir`` or ``$ESCUCHA_DATA_DIR``; exits 2 with how to give it when neither is a folder."""
    from ground.settings import get_settings

    corpora = data_dir or get_settings().data_dir
    if corpora is None or not corpora.is_dir():
        typer.echo(
            f"escucha {command} needs the labelled corpora: pass --data-dir DIR or set ESCUCHA_DATA_DIR", err=True
        )
        raise typer.Exit(2)
    return corpora


def _facts(obj: dict[str, Any]) -> Any:
    from classifier.base import PostFacts

    return PostFacts(
        text=obj["text"],
        is_dm=bool(obj.get("is_dm", False)),
        followers_count=int(obj.get("followers_count") or 0),
        waiting_s=float(obj.get("waiting_s") or 0.0),
    )


def parse_line(line: str) -> tuple[Any, dict[str, Any] | None, str | None]:
    """(id, object, error) for one input line of ``escucha score``."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, None, f"invalid JSON: {exc.msg}"
    if not isinstance(obj, dict):
        return None, None, "each line must be a JSON object with 'id' and 'text'"
    post_id = obj.get("id")
    if not isinstance(obj.get("text"), str):
        return post_id, None, "'text' must be a string"
    try:
        _facts(obj)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: followers_count Infinity, a 400-digit float
        return post_id, None, f"bad field: {exc}"
    return post_id, obj, None


def score_stream(scorer: Any, lines: Iterator[str], out: IO[str], *, batch: int = SCORE_BATCH) -> int:
    """Score JSON lines in batches; one output line per non-blank input line, errors included. Returns errors."""
    errors = 0
    pending: list[tuple[int, Any, dict[str, Any] | None, str | None]] = []

    def flush() -> None:
        nonlocal errors
        good = [(n, pid, obj) for n, pid, obj, err in pending if obj is not None]
        results: dict[int, dict[str, Any]] = {}
        scores: list[Any]
        if good:
            try:
                scores = scorer.score([_facts(obj) for _, _, obj in good])
            except Exception:  # one bad post must not sink its batch: retry one by one
                scores = []
                for _, _, obj in good:
                    try:
                        scores.extend(scorer.score([_facts(obj)]))
                    except Exception as exc:
                        scores.append(exc)
            for (n, pid, _), s in zip(good, scores, strict=True):
                if isinstance(s, Exception):
                    results[n] = {"id": pid, "line": n, "error": f"scoring failed: {s}"}
                    continue
                results[n] = {
                    "id": pid,
                    "sentiment": s.sentiment,
                    "probabilities": {k: round(v, 4) for k, v in s.probabilities.items()},
                    "complaint": round(s.complaint, 4),
                    "urgency": s.urgency,
                    "reasons": s.reasons,
                    "language": s.language,
                    "model_id": s.model_id,
                    "crisis": s.crisis,
                    "needs_response": s.needs_response,
                }
        for n, pid, parsed, err in pending:
            row = results.get(n) if parsed is not None else {"id": pid, "line": n, "error": err}
            if row is None or "error" in row:
                errors += 1
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        pending.clear()

    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        pid, obj, err = parse_line(line)
        pending.append((n, pid, obj, err))
        if len(pending) >= batch:
            flush()
    flush()
    return errors


def read_labelled(path: Path) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """A ``label<TAB>text`` file with a header row: (labels, texts, every skipped row with its line and why)."""
    from classifier.base import SENTIMENTS
    from classifier.train import decode_escapes, read_tsv_lines

    header, lines = read_tsv_lines(path)
    if "label" not in header or "text" not in header:
        raise ValueError(f"{path}: the header must be 'label<TAB>text'")
    at_label, at_text = header.index("label"), header.index("text")
    gold: list[str] = []
    texts: list[str] = []
    skipped: list[dict[str, Any]] = []
    for line, fields in lines:
        why = None
        if not fields or fields == [""]:
            why = "blank line"
        elif len(fields) < len(header):
            why = (
                "no tab: expected label<TAB>text"
                if len(fields) == 1
                else f"{len(fields)} fields, the header has {len(header)}"
            )
        else:
            label = fields[at_label].strip().lower()
            # A tab inside the last column is part of the text, not a new field.
            text = "\t".join(fields[at_text:]) if at_text == len(header) - 1 else fields[at_text]
            if label not in SENTIMENTS:
                why = f"label {fields[at_label].strip()!r} is not {', '.join(SENTIMENTS[:-1])} or {SENTIMENTS[-1]}"
            elif not text.strip():
                why = "empty text"  # nothing to score: a model's guess on it would count as a prediction
            else:
                gold.append(label)
                texts.append(decode_escapes(text))
        if why is not None:
            skipped.append({"line": line, "why": why})
    return gold, texts, skipped


def register(app: typer.Typer) -> None:
    """Add the classifier commands to the CLI."""

    @app.command()
    def score(
        file: Annotated[
            Path | None,
            typer.Argument(help="JSON lines {id, text}; standard input by default.", exists=True, dir_okay=False),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Write JSON lines (the only format).")] = True,
        model: Annotated[str | None, typer.Option(help="Model directory (default: $ESCUCHA_MODEL or shipped).")] = None,
    ) -> None:
        """Score posts: one JSON line out per line in, with sentiment, urgency and reasons; bad lines get an error."""
        from classifier.registry import load_scorer, load_transformer

        scorer = load_transformer(model) if model else load_scorer()
        if file is None:
            score_stream(scorer, iter(sys.stdin), sys.stdout)
            return
        with file.open(encoding="utf-8", errors="replace") as fh:
            score_stream(scorer, iter(fh), sys.stdout)

    @app.command()
    def evaluate(
        file: Annotated[
            Path, typer.Argument(help="TSV with a header row label<TAB>text.", exists=True, dir_okay=False)
        ],
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        model: Annotated[str | None, typer.Option(help="Model directory (default: $ESCUCHA_MODEL or shipped).")] = None,
        bootstrap: Annotated[
            int, typer.Option(min=0, help="Resamples for a 95 % bootstrap interval of macro-F1/recall (0: none).")
        ] = 0,
    ) -> None:
        """Sentiment macro-recall, macro-F1, accuracy and per-class figures on a labelled file."""
        from classifier.base import PostFacts
        from classifier.metrics import bootstrap_interval, sentiment_metrics
        from classifier.registry import load_scorer, load_transformer

        try:
            gold, texts, skipped = read_labelled(file)
        except (ValueError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if not texts:
            typer.echo(f"error: {file}: no row to score ({len(skipped)} skipped)", err=True)
            raise typer.Exit(2)
        scorer = load_transformer(model) if model else load_scorer()
        pred = [s.sentiment for s in scorer.score([PostFacts(text=t) for t in texts])]
        report = sentiment_metrics(gold, pred)
        report["model_id"] = scorer.model_id
        if bootstrap:
            report["interval_95"] = bootstrap_interval(gold, pred, resamples=bootstrap)
        report["skipped"] = len(skipped)
        report["skipped_rows"] = skipped
        if as_json:
            typer.echo(json.dumps(report, sort_keys=True))
            return
        for key, value in report.items():
            if key != "skipped_rows":
                typer.echo(f"{key}: {value}")
        for row in skipped:
            typer.echo(f"skipped line {row['line']}: {row['why']}")

    @app.command("train-teacher")
    def train_teacher(
        out: Annotated[Path, typer.Option(help="Run folder: checkpoints, the folds' soft labels, the report.")],
        data_dir: Annotated[
            Path | None, typer.Option(help="The labelled corpora (default: $ESCUCHA_DATA_DIR).")
        ] = None,
        folds: Annotated[int, typer.Option(min=2, help="Fold teachers; each labels the texts it never saw.")] = 2,
        epochs: Annotated[float, typer.Option(min=0.01, help="Passes over each fold's training part.")] = 2.0,
        seed: Annotated[int, typer.Option(help="Random seed (folds and batches).")] = 13,
        bf16: Bf16 = None,
    ) -> None:
        """Train the twelve-layer teacher k-fold on every labelled tweet (resumable) and write its soft labels."""
        from tqdm import tqdm

        from classifier.teacher import TeacherConfig, run_teacher
        from classifier.train import cpu_has_bf16_matmul

        corpora = corpora_or_exit(data_dir, "train-teacher")
        cfg = TeacherConfig(folds=folds, epochs=epochs, seed=seed, bf16=cpu_has_bf16_matmul() if bf16 is None else bf16)
        try:
            report = run_teacher(
                corpora, out, cfg, progress=lambda it, total: iter(tqdm(it, total=total, desc="teacher"))
            )
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(json.dumps(report["folds"], sort_keys=True))

    @app.command()
    def train(
        out: Annotated[
            Path | None, typer.Option(help="Output model directory (default: the fine-tuned version, v3).")
        ] = None,
        data_dir: Annotated[
            Path | None,
            typer.Option(
                help="The labelled corpora (default: $ESCUCHA_DATA_DIR; docs/design.md says how to assemble it)."
            ),
        ] = None,
        with_feedback: Annotated[bool, typer.Option(help="Also learn from staff corrections.")] = False,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 13,
        epochs: Annotated[float, typer.Option(help="Passes over the training mix.")] = 0.8,
        english_sample: Annotated[int, typer.Option(help="SemEval English tweets to sample.")] = 5000,
        num_layers: Annotated[int, typer.Option(help="Encoder layers kept (of 12).")] = 6,
        freeze_layers: Annotated[int, typer.Option(help="Bottom layers kept frozen.")] = 2,
        time_budget: Annotated[float | None, typer.Option(help="Stop training after this many seconds.")] = None,
        card: Annotated[Path | None, typer.Option(help="Model card path (default classifier/MODEL_CARD.md).")] = None,
        refit_only: Annotated[
            bool, typer.Option(help="Keep OUT's fine-tuned encoder; only refit the complaint head and recalibrate.")
        ] = False,
        heads_only: Annotated[
            bool,
            typer.Option(
                help="Write a new version (OUT, default the next shipped one) over PARENT's frozen encoder: the "
                "sentiment head chosen by cross-validation on cached features (classifier/heads_only.py)."
            ),
        ] = False,
        parent: Annotated[
            Path | None, typer.Option(help="--heads-only: the model whose encoder is kept (default v1).")
        ] = None,
        distil: Annotated[
            Path | None,
            typer.Option(
                help="A teacher's soft_labels.npz (escucha train-teacher): learn from its outputs as well as the "
                "labels.",
                exists=True,
                dir_okay=False,
            ),
        ] = None,
        more_languages: Annotated[
            str, typer.Option(help="Comma-separated XLM-T training pools to add, e.g. pt,it,fr,de.")
        ] = "",
        hold_out_calib: Annotated[
            bool, typer.Option(help="Leave the pools' calibration slice out, to compare versions on it.")
        ] = False,
        model_id: Annotated[str | None, typer.Option(help="The new version's id (default: OUT's folder name).")] = None,
        bf16: Bf16 = None,
    ) -> None:
        """Fine-tune the multi-task model (seeded), calibrate it, and write the weights and the model card."""
        import torch
        from tqdm import tqdm

        from classifier.feedback import load_examples
        from classifier.model import ModelSpec
        from classifier.registry import FINE_TUNED_MODEL, HEADS_MODEL, WEIGHTS_DIR
        from classifier.train import Example, TrainConfig, cpu_has_bf16_matmul, write_model_card
        from classifier.train import train as run_train
        from ground.db import get_engine

        corpora = corpora_or_exit(data_dir, "train")
        torch.set_num_threads(max(1, torch.get_num_threads()))
        languages = tuple(x.strip() for x in more_languages.split(",") if x.strip())
        if (heads_only or refit_only) and (distil is not None or languages or hold_out_calib):
            # Those redo only the heads from the parent's own splits: the options would be silently ignored.
            typer.echo(
                "--distil, --more-languages and --hold-out-calib train an encoder: drop --refit-only/--heads-only",
                err=True,
            )
            raise typer.Exit(2)
        wrong = [
            x for x in languages if x in ("en", "es") or not (corpora / "sentiment" / f"xlmt_{x}_train.tsv").is_file()
        ]
        if wrong:
            typer.echo(
                f"--more-languages: no extra XLM-T training pool for {', '.join(wrong)} (en and es are in already)",
                err=True,
            )
            raise typer.Exit(2)
        if heads_only and (with_feedback or refit_only):
            typer.echo(
                "--heads-only works from the corpora's cached features alone: drop --with-feedback/--refit-only",
                err=True,
            )
            raise typer.Exit(2)
        if heads_only:
            from classifier.heads_only import cv_markdown, train_heads

            report = train_heads(
                corpora,
                parent or WEIGHTS_DIR / FINE_TUNED_MODEL,
                out or WEIGHTS_DIR / HEADS_MODEL,
                seed=seed,
            )
            typer.echo(cv_markdown(report))
            h = report["heads_only"]
            typer.echo(json.dumps({k: h[k] for k in ("chosen", "alpha", "temperature", "rows", "seconds")}))
            return
        if with_feedback:
            from models.schema import require_schema

            require_schema(get_engine())  # staff corrections are read, never a schema made for them
        extra = [Example(t, task, y) for t, task, y in load_examples(get_engine())] if with_feedback else []
        if with_feedback:
            typer.echo(f"staff corrections: {len(extra)} labels")
        cfg = TrainConfig(
            data_dir=corpora,
            out_dir=out or WEIGHTS_DIR / FINE_TUNED_MODEL,  # not the default: that may be a heads-only version
            num_layers=num_layers,
            freeze_layers=freeze_layers,
            english_sample=english_sample,
            epochs=epochs,
            seed=seed,
            time_budget_s=time_budget,
            soft_labels=distil,
            more_languages=languages,
            hold_out_calib=hold_out_calib,
            bf16=cpu_has_bf16_matmul() if bf16 is None else bf16,
        )
        # The folder names the version: a plain `escucha train` rewrites the fine-tuned version under its own name.
        cfg.model_id = model_id or cfg.out_dir.name
        if refit_only:
            from classifier.train import refit_model_dir

            report = refit_model_dir(cfg.out_dir, cfg.data_dir, seed=seed, english_sample=english_sample, extra=extra)
        else:
            report = run_train(
                cfg, extra=extra, progress=lambda it, total: iter(tqdm(it, total=total, desc="training"))
            )
        command = "escucha train" + (" --with-feedback" if with_feedback else "") + f" --seed {seed}"
        if distil is not None:
            command += f" --distil {distil.name} --english-sample {english_sample} --epochs {epochs}"
            command += f" --more-languages {more_languages}" if more_languages else ""
            command += " --hold-out-calib" if hold_out_calib else ""
        command += " --refit-only" if refit_only else ""
        card_path = card or Path(__file__).resolve().parent / "MODEL_CARD.md"
        write_model_card(card_path, ModelSpec.read(cfg.out_dir), report, command)
        typer.echo(json.dumps({k: report[k] for k in ("sentiment_en", "sentiment_es", "complaint", "anger")}))
