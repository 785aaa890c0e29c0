"""The knowledge base's commands: ``escucha kb import FILE`` and ``escucha evaluate-answers FILE``.

Registered on the main app by ``escucha/cli.py``; the encoder (torch) is loaded only inside the commands.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ground.errors import UserError


def register(app: typer.Typer, database: Callable[..., Engine]) -> None:
    """Mount ``kb import`` and ``evaluate-answers`` on ``app``; ``database(read_only=False)`` opens a writer's."""
    kb_app = typer.Typer(help="The knowledge base: articles and canned answers.", no_args_is_help=True)
    app.add_typer(kb_app, name="kb")

    @kb_app.command("import")
    def kb_import(
        file: Annotated[Path, typer.Argument(help="A .csv or .md file of articles (see the README).")],
        actor: Annotated[str, typer.Option(help="Who the import is recorded as.")] = "import",
    ) -> None:
        """Add or replace articles from a CSV or Markdown file; a file with any bad row imports nothing."""
        from knowledge.importer import ImportProblem, import_articles, read_file

        try:
            parsed = read_file(file)
        except ImportProblem as exc:
            raise UserError(str(exc)) from exc
        engine = database(read_only=False)
        with Session(engine) as session:
            count = import_articles(session, parsed, actor=actor)
            session.commit()
        typer.echo(f"imported {count} article versions from {file}")

    @app.command("evaluate-answers")
    def evaluate_answers(
        file: Annotated[Path, typer.Argument(help="TSV with a header lang<TAB>intent<TAB>split<TAB>text.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        max_train_per_intent: Annotated[int, typer.Option(help="Training questions per intent and language.")] = 20,
        max_test_per_lang: Annotated[int, typer.Option(help="Test questions per language.")] = 400,
    ) -> None:
        """Top-1/top-3 accuracy of choosing the right article by meaning (e5) and by TF-IDF, same- and cross-lingual."""
        from knowledge.encoder import default_encoder
        from knowledge.evaluate import EvalFileError, evaluate

        try:
            report = evaluate(
                file,
                default_encoder(),
                max_train_per_intent=max_train_per_intent,
                max_test_per_lang=max_test_per_lang,
            )
        except (EvalFileError, OSError, UnicodeDecodeError) as exc:
            raise UserError(str(exc)) from exc
        if as_json:
            typer.echo(json.dumps(report, sort_keys=True))
            return
        for name, figures in report["directions"].items():
            e5, lexical = figures["e5"], figures["tfidf"]
            typer.echo(
                f"{name}: e5 top-1 {e5['top1']:.3f} top-3 {e5['top3']:.3f} · "
                f"TF-IDF top-1 {lexical['top1']:.3f} top-3 {lexical['top3']:.3f} ({figures['queries']} questions)"
            )
        typer.echo(f"threshold: {json.dumps(report['threshold'])}")
        for row in report["skipped"]:
            typer.echo(f"skipped line {row['line']}: {row['why']}")
