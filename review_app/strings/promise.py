"""Strings of issue 15's promises: what we promised a customer, the delay updates, and the confirm box."""

from __future__ import annotations

STRINGS = {
    "es": {
        "promise_made": "Prometido para las {time}",
        "promise_in_reply": "Esta respuesta promete para las {time}",
        "promise_basis": "{ahead} por delante · {minutes} min por respuesta · margen {margin} %",
        "promise_update_due": "Si no se responde antes, a las {time} sale un aviso de retraso con una nueva previsión",
        "promise_updates_stopped": "Avisos de retraso detenidos para esta conversación",
        "promise_stop_updates": "Detener avisos de retraso",
        "promise_allow_updates": "Reanudar avisos de retraso",
        "promise_msg_stopped": "Avisos de retraso detenidos",
        "promise_msg_allowed": "Avisos de retraso reanudados",
        "confirm_send_to": "¿Enviar esta respuesta a {to} ({channel}) en {network}? Se publica tal cual:",
        "confirm_unnamed": "el cliente (sin nombre)",
    },
    "en": {
        "promise_made": "We promised by {time}",
        "promise_in_reply": "This reply promises by {time}",
        "promise_basis": "{ahead} ahead · {minutes} min per answer · {margin} % margin",
        "promise_update_due": "Unless answered first, a delay update with a new forecast goes out at {time}",
        "promise_updates_stopped": "Delay updates stopped for this conversation",
        "promise_stop_updates": "Stop delay updates",
        "promise_allow_updates": "Allow delay updates again",
        "promise_msg_stopped": "Delay updates stopped",
        "promise_msg_allowed": "Delay updates allowed again",
        "confirm_send_to": "Send this reply to {to} ({channel}) on {network}? It is published as it is:",
        "confirm_unnamed": "the customer (no name given)",
    },
}
