"""Strings of the desk's own "page not found" page."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "es": {
        "not_found_title": "Página no encontrada",
        "not_found_body": (
            "La dirección {address} no es una página de Escucha, o tu rol no puede abrirla. Puede que el enlace "
            "esté mal copiado o que sea de otra persona del equipo."
        ),
        "not_found_links": "Páginas que puedes abrir:",
    },
    "en": {
        "not_found_title": "Page not found",
        "not_found_body": (
            "The address {address} is not a page of Escucha, or your role cannot open it. The link may have been "
            "copied wrong, or be meant for someone else on the team."
        ),
        "not_found_links": "Pages you can open:",
    },
}
