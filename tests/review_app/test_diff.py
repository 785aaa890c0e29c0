"""The approvals diff: what a manager reads when an agent changed the machine's suggestion."""

from __future__ import annotations

import itertools
import random

from review_app.diff import DELETED, INSERTED, SAME, diff_html, word_diff


def _sides(runs: list[tuple[str, str]]) -> tuple[str, str]:
    old = "".join(t for op, t in runs if op in (SAME, DELETED))
    new = "".join(t for op, t in runs if op in (SAME, INSERTED))
    return old, new


def test_a_rewritten_sentence_reads_as_one_struck_phrase_and_one_new_one() -> None:
    old = "You'll have an answer within 15 minutes. Please send us a direct message so we can look at it."
    new = "You'll have an answer within 15 minutes. Your order #5521 left our warehouse today."
    runs = word_diff(old, new)
    assert runs == [
        (SAME, "You'll have an answer within 15 minutes. "),
        (DELETED, "Please send us a direct message so we can look at it."),
        (INSERTED, "Your order #5521 left our warehouse today."),
    ]


def test_an_added_sentence_is_one_insertion_and_words_kept_between_changes_stay_plain() -> None:
    assert word_diff("Hola Ana.", "Hola Ana. Ya está enviado.") == [
        (SAME, "Hola Ana."),
        (INSERTED, " Ya está enviado."),
    ]
    runs = word_diff("send it to your home today", "take it to your office today")
    assert (SAME, " it to your ") in runs and (DELETED, "home") in runs and (INSERTED, "office") in runs


def test_both_texts_can_be_read_back_from_the_diff_whatever_changed() -> None:
    rng = random.Random(11)
    words = ["el", "pedido", "order", "#5521", "llegó", "never", "arrived", "tarde", "late", ",", ".", "¡ya!", "sorry"]
    for _ in range(300):
        old = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        new = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        runs = word_diff(old, new)
        assert _sides(runs) == (old, new)
        # Each change is shown once and whole: never two runs of one kind in a row, never new words before old.
        pairs = list(itertools.pairwise(op for op, _ in runs))
        assert all(a != b for a, b in pairs) and (INSERTED, DELETED) not in pairs


def test_markup_in_either_text_stays_text() -> None:
    html = diff_html("<b>hola</b>", "<script>x()</script> hola")
    assert "<script>" not in html and "&lt;script&gt;" in html and "<ins" in html
