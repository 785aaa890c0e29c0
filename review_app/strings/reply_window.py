"""Strings of a network's reply rules on a card: the messaging window of a DM and answering a comment privately."""

from __future__ import annotations

STRINGS = {
    "es": {
        "window_closed": (
            "No se puede responder este mensaje directo: {network} solo deja contestar en las {hours} h "
            "siguientes al último mensaje del cliente, y ese plazo terminó el {closed}."
        ),
        "window_public": "Responder en público a su última publicación abierta",
        "window_no_public": (
            "El cliente no tiene ninguna publicación abierta en {network} a la que responder en público."
        ),
        "reply_privately": "Responder en privado (mensaje directo al autor del comentario)",
        "reply_privately_help": (
            "{network} permite una sola respuesta privada por comentario, en los {days} días siguientes."
        ),
        "private_closed_window": "Ya no se puede responder en privado: pasaron más de {days} días desde el comentario.",
        "private_closed_once": "Este comentario ya tiene su respuesta privada: {network} solo permite una.",
    },
    "en": {
        "window_closed": (
            "This direct message cannot be answered: {network} only allows a reply within {hours} h of the "
            "customer's last message, and that window closed on {closed}."
        ),
        "window_public": "Reply publicly to their latest open post",
        "window_no_public": "The customer has no open post on {network} to answer publicly.",
        "reply_privately": "Reply privately (a direct message to the commenter)",
        "reply_privately_help": "{network} allows one private reply per comment, within {days} days of it.",
        "private_closed_window": "A private reply is no longer possible: the comment is more than {days} days old.",
        "private_closed_once": "This comment already has its private reply: {network} allows only one.",
    },
}
