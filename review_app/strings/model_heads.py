"""Strings of the model that scored each message, and the Admin page's model section (heads refitted on corrections)."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "es": {
        "model_scored_by": "modelo que puntuó este mensaje: {model}",
        "admin_model": "Clasificador",
        "admin_model_now": "Puntúa ahora: **{model}**. Último mensaje puntuado con: **{latest}**.",
        "admin_model_none": "Aún no se ha puntuado ningún mensaje.",
        "admin_model_help": (
            "Cuando se acumulan correcciones del equipo, el trabajador reajusta las cabezas de queja y sentimiento "
            "con ellas y solo las estrena si, con validación cruzada sobre correcciones apartadas, no lo hacen peor."
        ),
        "admin_model_attempts": "Intentos de reajuste",
        "admin_model_no_attempts": "Todavía no ha habido ningún intento de reajuste.",
        "admin_model_rollback": "Volver a la versión anterior",
        "admin_model_rollback_done": "Se volvió a {model}.",
        "admin_model_nothing": "No hay versión a la que volver: ya se usan las cabezas originales.",
    },
    "en": {
        "model_scored_by": "model that scored this message: {model}",
        "admin_model": "Classifier",
        "admin_model_now": "Scoring now: **{model}**. Latest message scored by: **{latest}**.",
        "admin_model_none": "No message has been scored yet.",
        "admin_model_help": (
            "When staff corrections accumulate, the worker refits the complaint and sentiment heads on them and only "
            "puts them in use when, cross-validated on held-back corrections, they do no worse."
        ),
        "admin_model_attempts": "Refit attempts",
        "admin_model_no_attempts": "No refit has been attempted yet.",
        "admin_model_rollback": "Go back to the previous version",
        "admin_model_rollback_done": "Went back to {model}.",
        "admin_model_nothing": "There is no version to go back to: the original heads are in use.",
    },
}
