"""``escucha evaluate-relevance`` and ``escucha evaluate-crisis``: recall and precision of two lanes, recall first.

Registered on the main app by ``escucha/cli.py``; the scorer is imported inside the commands so the rest of the
CLI starts fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

SPLITS = ("test", "tune", "all")


def _print(report: dict[str, Any], as_json: bool, head: str) -> None:
    """One JSON object, or the headline figures a person reads first."""
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True, ensure_ascii=False))
        return
    for key, figures in report[head].items():
        typer.echo(
            f"{key}: recall {figures['recall']} {figures['recall_95']}, "
            f"precision {figures['precision']} {figures['precision_95']}, n {figures['n']} ({figures['positives']} +)"
        )
    for row in report.get("skipped_rows", []):
        typer.echo(f"skipped line {row['line']}: {row['why']}")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Mount the lane evaluations on ``app``."""

    @app.command("evaluate-relevance")
    def evaluate_relevance(
        file: Annotated[
            Path,
            typer.Argument(
                help="TSV: lang, brand, label (brand|chatter), text (classifier/eval/relevance.tsv).",
                exists=True,
                dir_okay=False,
            ),
        ],
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        model: Annotated[str | None, typer.Option(help="Model directory (default: $ESCUCHA_MODEL or shipped).")] = None,
    ) -> None:
        """Recall and precision (95 % intervals) of "for the brand" among keyword hits, overall and per language."""
        from classifier.lane_eval import read_rows, relevance_report
        from classifier.registry import load_scorer, load_transformer

        try:
            rows, skipped = read_rows(file, labels=("brand", "chatter"), about="brand")
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise _fail(str(exc)) from exc
        if not rows:
            raise _fail(f"{file}: no labelled row ({len(skipped)} skipped)")
        report = relevance_report(rows, load_transformer(model) if model else load_scorer())
        report["skipped_rows"] = skipped
        _print(report, as_json, "for_brand")

    @app.command("evaluate-crisis")
    def evaluate_crisis(
        file: Annotated[
            Path,
            typer.Argument(
                help="TSV of labelled posts (lang, label crisis|not_crisis, kind, text), or an id file "
                "(id, sha1, lang, label, kind, split) whose texts are read from --data-dir.",
                exists=True,
                dir_okay=False,
            ),
        ],
        data_dir: Annotated[
            Path | None,
            typer.Option(help="The corpora an id file points into (default: $ESCUCHA_DATA_DIR)."),
        ] = None,
        split: Annotated[str, typer.Option(help="Which rows: test (never tuned on), tune, or all.")] = "test",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        model: Annotated[str | None, typer.Option(help="Model directory (default: $ESCUCHA_MODEL or shipped).")] = None,
    ) -> None:
        """Recall and precision (95 % intervals) of the crisis lane, overall, per language and per kind."""
        from classifier.lane_eval import crisis_report, read_rows, rebuild
        from classifier.registry import load_scorer, load_transformer
        from ground.settings import get_settings

        if split not in SPLITS:
            raise typer.BadParameter(f"expected one of {', '.join(SPLITS)}", param_hint="--split")
        try:
            header = file.open(encoding="utf-8").readline().rstrip("\n").split("\t")
            if "text" in header:
                rows, skipped = read_rows(file, labels=("crisis", "not_crisis"), about="kind")
            else:
                corpora = data_dir or get_settings().data_dir
                if corpora is None or not corpora.is_dir():
                    raise ValueError(f"{file} holds ids only: pass --data-dir DIR or set ESCUCHA_DATA_DIR")
                rows, skipped = rebuild(file, corpora)
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise _fail(str(exc)) from exc
        chosen = [r for r in rows if split == "all" or r.split in (split, "")]
        if not chosen:
            raise _fail(f"{file}: no labelled row in split {split!r} ({len(skipped)} skipped)")
        report = crisis_report(chosen, load_transformer(model) if model else load_scorer())
        report["split"] = split
        report["skipped_rows"] = skipped
        _print(report, as_json, "crisis")
