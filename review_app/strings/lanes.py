"""Strings of a keyword hit's own actions (answered by hand, not for us)."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "es": {
        "manual_hint": (
            "X no permite responder automáticamente a esta búsqueda: responde en la red y márcala aquí, "
            "o ciérrala si no va con nosotros."
        ),
        "manual_hint_other": "Solo quien la tiene asignada (o un responsable) puede cerrar esta publicación.",
        "manual_note": "Nota (opcional)",
        "answered_by_hand": "Respondida a mano en la red",
        "not_for_us": "No va con nosotros",
        "msg_answered_by_hand": "Publicación {post} marcada como respondida a mano en la red.",
        "msg_not_for_us": "Publicación {post} cerrada: no va con nosotros.",
        "manual_not_allowed": "Tu rol no puede cerrar esta publicación.",
        "manual_already_closed": "La publicación {post} ya estaba cerrada: alguien se adelantó.",
        "manual_invalid": "Esta publicación se responde desde la mesa, no a mano; o la nota es demasiado larga.",
    },
    "en": {
        "manual_hint": (
            "X does not allow an automated reply to this keyword hit: answer it on the network and mark it here, "
            "or close it if it is not about us."
        ),
        "manual_hint_other": "Only the person it is assigned to (or a manager) can close this post.",
        "manual_note": "Note (optional)",
        "answered_by_hand": "Answered by hand on the network",
        "not_for_us": "Not for us",
        "msg_answered_by_hand": "Post {post} marked as answered by hand on the network.",
        "msg_not_for_us": "Post {post} closed: not for us.",
        "manual_not_allowed": "Your role cannot close this post.",
        "manual_already_closed": "Post {post} was already closed: someone got there first.",
        "manual_invalid": "This post is answered from the desk, not by hand; or the note is too long.",
    },
}
