"""Read knowledge-base articles from CSV or Markdown files (``escucha kb import FILE``).

Every row is checked before anything is stored: a file with one bad row imports nothing and says which line
is wrong and why, so a fixed file can simply be imported again.

CSV: a header row with ``slug, language, title, answer`` and optionally ``body``, ``questions`` (several joined
with ``|``) and ``kind`` (``article`` or ``canned``).

Markdown: one or more articles, each starting at a ``# Title`` line, followed by ``key: value`` lines (``slug``,
``language``, optionally ``kind``) and the sections ``## Answer`` (required), ``## Questions`` (a ``-`` list) and
``## Article`` (the full text for staff).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from knowledge.articles import ArticleDraft, ArticleError, clean, save_article
from knowledge.encoder import Encoder

REQUIRED_COLUMNS = ("slug", "language", "title", "answer")
OPTIONAL_COLUMNS = ("body", "questions", "kind")
MAX_BYTES = 5_000_000
_SECTIONS = {"answer": "answer", "respuesta": "answer", "questions": "questions", "preguntas": "questions",
             "article": "body", "artículo": "body", "articulo": "body", "body": "body"}  # fmt: skip
_KEYS = ("slug", "language", "kind")


class ImportProblem(ValueError):
    """A file that cannot be imported; ``problems`` lists each bad line with its reason."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        super().__init__(f"{path}: nothing imported: {shown}")


@dataclass(frozen=True, slots=True)
class ParsedArticle:
    """One article read from a file, with the line it starts on."""

    line: int
    draft: ArticleDraft


def parse_csv(text: str, *, name: str = "file") -> list[ParsedArticle]:
    """Read CSV rows into checked drafts; raise ``ImportProblem`` listing every bad row."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportProblem(name, [f"line 1: the header lacks {', '.join(missing)}"])
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise ImportProblem(name, [f"line 1: unknown columns {', '.join(unknown)}"])
    reader.fieldnames = header
    parsed: list[ParsedArticle] = []
    problems: list[str] = []
    for row in reader:
        line = reader.line_num
        if None in row:  # more cells than the header names
            problems.append(f"line {line}: more cells than columns")
            continue
        if any(row.get(c) is None for c in REQUIRED_COLUMNS):
            problems.append(f"line {line}: fewer cells than columns")
            continue
        draft = ArticleDraft(
            slug=row["slug"],
            language=row["language"],
            title=row["title"],
            answer=row["answer"],
            body=row.get("body") or "",
            questions=(row.get("questions") or "").split("|"),
            kind=row.get("kind") or "article",
        )
        _check(draft, line, parsed, problems)
    if problems:
        raise ImportProblem(name, problems)
    return parsed


def parse_markdown(text: str, *, name: str = "file") -> list[ParsedArticle]:
    """Read ``# Title`` blocks into checked drafts; raise ``ImportProblem`` listing every bad block."""
    parsed: list[ParsedArticle] = []
    problems: list[str] = []
    blocks: list[tuple[int, list[tuple[int, str]]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith("# "):
            blocks.append((number, [(number, raw)]))
        elif blocks:
            blocks[-1][1].append((number, raw))
        elif raw.strip():
            problems.append(f"line {number}: text before the first '# Title'")
    for start, lines in blocks:
        try:
            draft = _markdown_block(lines)
        except ArticleError as exc:
            problems.append(f"line {start}: {exc}")
            continue
        _check(draft, start, parsed, problems)
    if not blocks and not problems:
        problems.append("line 1: no article ('# Title') in the file")
    if problems:
        raise ImportProblem(name, problems)
    return parsed


def _markdown_block(lines: list[tuple[int, str]]) -> ArticleDraft:
    """Turn one ``# Title`` block into a draft (not yet checked)."""
    title = lines[0][1][2:].strip()
    meta: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for number, raw in lines[1:]:
        stripped = raw.strip()
        if raw.startswith("## "):
            heading = raw[3:].strip().lower()
            if heading not in _SECTIONS:
                raise ArticleError(f"line {number}: unknown section {raw[3:].strip()!r}")
            current = _SECTIONS[heading]
            sections.setdefault(current, [])
        elif current is None:
            if not stripped:
                continue
            key, sep, value = stripped.partition(":")
            if not sep or key.strip().lower() not in _KEYS:
                raise ArticleError(f"line {number}: expected 'slug:', 'language:' or 'kind:', got {stripped[:40]!r}")
            meta[key.strip().lower()] = value.strip()
        else:
            sections[current].append(raw)
    for key in ("slug", "language"):
        if key not in meta:
            raise ArticleError(f"no '{key}:' line")
    questions = [q.strip()[1:].strip() for q in sections.get("questions", []) if q.strip().startswith(("-", "*"))]
    return ArticleDraft(
        slug=meta["slug"],
        language=meta["language"],
        title=title,
        answer="\n".join(sections.get("answer", [])).strip(),
        body="\n".join(sections.get("body", [])).strip(),
        questions=questions,
        kind=meta.get("kind", "article"),
    )


def _check(draft: ArticleDraft, line: int, parsed: list[ParsedArticle], problems: list[str]) -> None:
    """Append ``draft`` checked, or the reason it is refused; one slug and language may appear once a file."""
    try:
        checked = clean(draft)
    except ArticleError as exc:
        problems.append(f"line {line}: {exc}")
        return
    if any(p.draft.slug == checked.slug and p.draft.language == checked.language for p in parsed):
        problems.append(f"line {line}: {checked.slug} ({checked.language}) appears twice in the file")
        return
    parsed.append(ParsedArticle(line, checked))


def read_file(path: Path) -> list[ParsedArticle]:
    """Parse a ``.csv`` or ``.md`` file by its extension; raise ``ImportProblem`` on anything wrong."""
    name = str(path)
    if not path.is_file():
        raise ImportProblem(name, ["no such file"])
    if path.stat().st_size > MAX_BYTES:
        raise ImportProblem(name, [f"larger than {MAX_BYTES} bytes"])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportProblem(name, [f"not UTF-8 text (byte {exc.start})"]) from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return parse_csv(text, name=name)
    if suffix in (".md", ".markdown"):
        return parse_markdown(text, name=name)
    raise ImportProblem(name, [f"unknown file type {suffix or '(none)'}: use .csv or .md"])


def import_articles(
    session: Session, parsed: list[ParsedArticle], *, actor: str, encoder: Encoder | None = None
) -> int:
    """Store parsed articles (adding or replacing by slug and language); return how many; the caller commits."""
    for item in parsed:
        save_article(session, item.draft, actor=actor, encoder=encoder)
    return len(parsed)


DEMO_MANUALS = Path(__file__).resolve().parent / "manuals" / "demo.md"


def seed_demo_manuals(session: Session, *, encoder: Encoder | None = None) -> int:
    """Load the demo manuals (orders, refunds, delivery, account access, store hours); the caller commits."""
    return import_articles(session, read_file(DEMO_MANUALS), actor="demo", encoder=encoder)
