"""Build ``knowledge/eval/mtod_eval.tsv`` from the Multilingual Task-Oriented Dialog release (Schuster et al.).

The release (Facebook, 2018; CC BY-SA, see ``knowledge/eval/mtod_eval.NOTICE.md``) holds English, Spanish and Thai
requests to an assistant, each labelled with one of twelve intents (alarms, reminders, weather) in PyText TSV files:
``intent<TAB>slots<TAB>utterance<TAB>language<TAB>tokens``, one folder per language. Its utterances are not
translations of each other, but both languages share the intents, which is what ``escucha evaluate-answers`` needs.

Each intent becomes one "article" per language made of its *dev-split* utterances (the evaluation takes the
centroid of the training rows, as the product does with an article's questions), and the questions are drawn
from the *test* split, so no question was seen in building an article. Only intents with enough distinct
utterances in every language and split are kept. The draw is seeded: ``python -m knowledge.mtod_set SRC OUT``
rebuilds the committed file byte for byte from the same release.
"""

from __future__ import annotations

import random
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

LANGS = ("es", "en")
# The release's split that builds the articles, and the one that asks the questions.
SOURCE_SPLITS = {"train": "eval", "test": "test"}
PER_INTENT = {"train": 20, "test": 20}
SEED = 15
HEADER = "lang\tintent\tsplit\ttext"


class SourceError(ValueError):
    """A release folder that cannot be read (the message names the file and why)."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """One labelled request from the release."""

    lang: str
    intent: str
    text: str


def _clean(text: str) -> str:
    """One line of single-spaced text (the evaluation file is tab-separated, one row a line)."""
    return " ".join(text.split())


def read_release_file(path: Path, lang: str) -> list[Utterance]:
    """Read one PyText TSV file of the release; a row without an intent or an utterance is an error."""
    if not path.is_file():
        raise SourceError(f"{path}: no such file (expected the release's {lang}/ folder)")
    rows: list[Utterance] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < 3 or not cells[0].strip() or not _clean(cells[2]):
            raise SourceError(f"{path}:{number}: expected intent<TAB>slots<TAB>utterance…, got {line[:80]!r}")
        rows.append(Utterance(lang=lang, intent=cells[0].strip(), text=_clean(cells[2])))
    return rows


def _distinct(rows: list[Utterance]) -> dict[str, list[str]]:
    """Each intent's distinct texts (case and spacing folded), in a stable order."""
    seen: set[str] = set()
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        key = row.text.casefold()
        if key in seen:
            continue  # the release repeats many requests word for word
        seen.add(key)
        by_intent[row.intent].append(row.text)
    return {intent: sorted(texts) for intent, texts in by_intent.items()}


def build_rows(source: Path, *, per_intent: dict[str, int] | None = None, seed: int = SEED) -> list[tuple[str, ...]]:
    """The evaluation rows ``(lang, intent, split, text)`` drawn from the release folder ``source``."""
    wanted = per_intent or PER_INTENT
    pools: dict[tuple[str, str], dict[str, list[str]]] = {}
    for lang in LANGS:
        for split, release_split in SOURCE_SPLITS.items():
            path = source / lang / f"{release_split}-{lang}.tsv"
            pools[(lang, split)] = _distinct(read_release_file(path, lang))
        # A question that is word for word one of its language's article texts would test nothing.
        train_texts = {t.casefold() for texts in pools[(lang, "train")].values() for t in texts}
        pools[(lang, "test")] = {
            intent: [t for t in texts if t.casefold() not in train_texts]
            for intent, texts in pools[(lang, "test")].items()
        }
    intents = sorted(
        intent
        for intent in set.intersection(*(set(pool) for pool in pools.values()))
        if all(len(pools[(lang, split)][intent]) >= wanted[split] for lang in LANGS for split in SOURCE_SPLITS)
    )
    if len(intents) < 2:
        raise SourceError(f"{source}: fewer than two intents have enough utterances in every language and split")
    rng = random.Random(seed)
    rows: list[tuple[str, ...]] = []
    for lang in LANGS:
        for intent in intents:
            for split in SOURCE_SPLITS:
                for text in rng.sample(pools[(lang, split)][intent], wanted[split]):
                    rows.append((lang, intent, split, text))
    return rows


def write_rows(rows: list[tuple[str, ...]], out: Path) -> None:
    """Write the rows under the header ``escucha evaluate-answers`` reads."""
    out.write_text("\n".join([HEADER, *("\t".join(row) for row in rows)]) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    """``python -m knowledge.mtod_set SOURCE_DIR OUT.tsv``: rebuild the evaluation file from the release."""
    if len(argv) != 2:
        print("usage: python -m knowledge.mtod_set SOURCE_DIR OUT.tsv", file=sys.stderr)
        return 2
    try:
        rows = build_rows(Path(argv[0]))
    except SourceError as exc:
        print(exc, file=sys.stderr)
        return 1
    write_rows(rows, Path(argv[1]))
    print(f"wrote {len(rows)} rows to {argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
