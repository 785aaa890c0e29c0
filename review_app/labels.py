"""Words for the codes the database stores and the reasons the classifier gives, in Spanish and English.

Kept apart from ``i18n`` (the page strings) so that each list has one home. A code or reason without a word here
is shown as it is stored; the desk's catalogue test looks for such leftovers on every page.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from review_app.i18n import DEFAULT_LANGUAGE, LANGUAGES

# Codes by group: (group, code) -> (Spanish, English).
CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("sentiment", "negative"): ("negativo", "negative"),
    ("sentiment", "neutral"): ("neutro", "neutral"),
    ("sentiment", "positive"): ("positivo", "positive"),
    ("sentiment", "unscored"): ("sin puntuar", "unscored"),
    ("kind", "mention"): ("mención", "mention"),
    ("kind", "search"): ("búsqueda", "keyword hit"),
    ("kind", "comment"): ("comentario", "comment"),
    ("kind", "page_post"): ("publicación de la página", "page post"),
    ("kind", "visitor_post"): ("publicación de visitante", "visitor post"),
    ("kind", "dm"): ("MD", "DM"),
    ("kind", "own"): ("propia", "own"),
    ("kind", "share"): ("compartida", "share"),
    ("status", "new"): ("nueva", "new"),
    ("status", "scored"): ("puntuada", "scored"),
    ("status", "assigned"): ("asignada", "assigned"),
    ("status", "replied"): ("respondida", "replied"),
    ("status", "dismissed"): ("descartada", "dismissed"),
    ("status", "escalated"): ("escalada", "escalated"),
    ("status", "no_action"): ("sin acción", "no action"),
    ("state", "suggested"): ("sugerencia", "suggestion"),
    ("state", "draft"): ("borrador", "draft"),
    ("state", "pending_approval"): ("esperando aprobación", "waiting for approval"),
    ("state", "approved"): ("aprobada", "approved"),
    ("state", "sending"): ("enviándose", "sending"),
    ("state", "sent"): ("enviada", "sent"),
    ("state", "failed"): ("fallida", "failed"),
    ("state", "rejected"): ("rechazada", "rejected"),
    ("article_kind", "article"): ("artículo", "article"),
    ("article_kind", "canned"): ("respuesta guardada", "canned answer"),
    ("alert", "breach"): ("SLA incumplido", "SLA breached"),
    ("alert", "escalation"): ("escalada a ti", "escalated to you"),
    ("alert", "crisis"): ("crisis", "crisis"),
    ("alert", "rejected"): ("respuesta rechazada", "answer rejected"),
    ("alert", "team_full"): ("equipo al completo", "team at capacity"),
    ("alert", "holding"): ("en espera", "on hold"),
    ("alert", "task"): ("tarea para ti", "task for you"),
    # Issue 14's desk: the queue's crisis lane and answer filter, bulk dismissal reasons, the crisis view's state.
    ("queue_lane", "all"): ("todas", "all"),
    ("queue_lane", "crisis"): ("solo crisis", "crisis only"),
    ("queue_answer", "all"): ("cualquiera", "any"),
    ("queue_answer", "submitted"): ("con respuesta enviada por alguien", "with a submitted answer"),
    ("queue_answer", "suggested"): ("solo con sugerencia", "with a suggestion only"),
    ("queue_answer", "none"): ("sin nada", "with nothing"),
    ("dismiss_reason", "spam"): ("spam", "spam"),
    ("dismiss_reason", "off_topic"): ("no viene al caso", "off-topic"),
    ("dismiss_reason", "not_for_us"): ("no va con nosotros", "not for us"),
    ("dismiss_reason", "duplicate"): ("duplicada", "duplicate"),
    ("dismiss_reason", "other"): ("otro motivo", "other"),
    ("crisis_state", "all"): (
        "abiertas primero, y cerradas de los últimos 7 días",
        "open first, then closed in the last 7 days",
    ),
    ("crisis_state", "open"): ("abiertas", "open"),
    ("crisis_state", "closed"): ("cerradas (últimos 7 días)", "closed (last 7 days)"),
    ("event", "post_converted_to_task"): ("convertida en tarea", "converted to a task"),
    ("event", "task_done"): ("tarea hecha", "task done"),
    ("event", "post_answered_by_hand"): ("respondida a mano en la red", "answered by hand on the network"),
    ("event", "post_not_for_us"): ("no va con nosotros", "not for us"),
    ("overflow", "hold"): ("dejarlas sin asignar", "leave them unassigned"),
    ("overflow", "least_loaded"): (
        "a quien tenga menos carga, por encima de su capacidad",
        "to the least loaded, over capacity",
    ),
    ("overflow", "managers"): ("a los responsables, por encima de su capacidad", "to the managers, over capacity"),
    ("role", "admin"): ("admin", "admin"),
    ("role", "manager"): ("responsable", "manager"),
    ("role", "agent"): ("agente", "agent"),
    ("role", "marketing"): ("marketing", "marketing"),
    ("channel", "public"): ("público", "public"),
    ("channel", "dm"): ("MD", "DM"),
    ("lane", "crisis"): ("crisis", "crisis"),
    ("lane", "complaint"): ("queja", "complaint"),
    ("lane", "other"): ("otros", "other"),
    ("reply_kind", "answer"): ("respuesta", "answer"),
    ("reply_kind", "ack"): ("acuse de recibo", "acknowledgement"),
    ("reply_kind", "update"): ("aviso de retraso", "delay update"),
    ("reply_kind", "survey"): ("encuesta", "survey"),
    ("reply_type", "crisis"): ("crisis", "crisis"),
    ("reply_type", "complaint"): ("queja", "complaint"),
    ("reply_type", "question"): ("pregunta", "question"),
    ("reply_type", "praise"): ("elogio", "praise"),
    ("reply_type", "other"): ("otros", "other"),
    ("reply_type", "ack"): ("acuse de recibo", "acknowledgement"),
    ("reply_type", "update"): ("aviso de retraso", "delay update"),
    ("reply_type", "survey"): ("encuesta", "survey"),
    ("reply_type", "promoter"): ("pregunta de recomendación (0–10)", "promoter question (0–10)"),
    ("tone", "upset"): ("molesto", "upset"),
    ("tone", "calm"): ("tranquilo", "calm"),
    ("tone", "any"): ("cualquiera", "any"),
    ("language", "es"): ("español", "Spanish"),
    ("language", "en"): ("inglés", "English"),
    ("language", "any"): ("cualquiera", "any"),
    ("source", "mentions"): ("menciones", "mentions"),
    ("source", "search"): ("búsqueda", "keyword search"),
    ("source", "dms"): ("MD", "DMs"),
    ("source", "feed"): ("muro de la página", "Page feed"),
    ("source", "messages"): ("mensajes", "messages"),
    ("source", "comments"): ("comentarios", "comments"),
    # Conversations (review_app/views/conversation.py): what they are, whether they wait, and their case history.
    ("conv_status", "open"): ("abierta", "open"),
    ("conv_status", "closed"): ("finalizada", "closed"),
    ("conv_kind", "dm"): ("MD", "DM"),
    ("conv_kind", "public"): ("hilo público", "public thread"),
    ("event", "assigned"): ("asignada", "assigned"),
    ("event", "joined_conversation"): ("unida a la conversación de su responsable", "joined its owner's conversation"),
    ("event", "post_reassigned"): ("reasignada", "reassigned"),
    ("event", "unassigned"): ("desasignada", "unassigned"),
    ("event", "post_escalated"): ("escalada", "escalated"),
    ("event", "post_dismissed"): ("descartada", "dismissed"),
    ("event", "post_corrected"): ("clasificación corregida", "classification corrected"),
    ("event", "reply_submitted"): ("respuesta enviada a aprobación", "reply submitted for approval"),
    ("event", "reply_approved"): ("respuesta aprobada", "reply approved"),
    ("event", "reply_rejected"): ("respuesta rechazada", "reply rejected"),
    ("event", "reply_sent"): ("respuesta enviada a la red", "reply sent to the network"),
    ("event", "reply_found_on_network"): ("respuesta encontrada en la red", "reply found on the network"),
    ("event", "reply_failed"): ("envío fallido", "sending failed"),
    ("event", "reply_retry"): ("envío reintentado", "sending retried"),
    ("event", "ack_queued"): ("acuse de recibo preparado", "acknowledgement queued"),
    ("event", "update_queued"): ("aviso de retraso preparado", "delay update queued"),
    ("event", "survey_queued"): ("encuesta preparada", "survey queued"),
    ("event", "answered_in_conversation"): ("respondida en la conversación", "answered in the conversation"),
    ("event", "note_added"): ("nota interna añadida", "internal note added"),
    ("field", "sentiment"): ("sentimiento", "sentiment"),
    ("field", "urgency"): ("urgencia", "urgency"),
    ("field", "needs_response"): ("necesita respuesta", "needs a response"),
    ("setting", "x_brand_username"): ("usuario de la marca en X", "brand username on X"),
    ("setting", "x_search_query"): ("búsqueda por palabra clave en X", "keyword search on X"),
    ("setting", "facebook_page_id"): ("id de la página de Facebook", "Facebook Page id"),
    ("setting", "instagram_user_id"): ("id de la cuenta de Instagram", "Instagram account id"),
    ("setting", "instagram_username"): ("usuario de Instagram", "Instagram username"),
    ("weekday", "0"): ("lunes", "Monday"),
    ("weekday", "1"): ("martes", "Tuesday"),
    ("weekday", "2"): ("miércoles", "Wednesday"),
    ("weekday", "3"): ("jueves", "Thursday"),
    ("weekday", "4"): ("viernes", "Friday"),
    ("weekday", "5"): ("sábado", "Saturday"),
    ("weekday", "6"): ("domingo", "Sunday"),
    # What a run of the refit job did (models.tables.RefitAttempt.outcome) and its table's columns.
    ("refit_outcome", "promoted"): ("estrenada", "promoted"),
    ("refit_outcome", "kept"): ("descartada: peor", "kept the old: worse"),
    ("refit_outcome", "rolled_back"): ("vuelta atrás", "rolled back"),
    ("refit_outcome", "skipped"): ("omitido", "skipped"),
    ("refit_outcome", "failed"): ("falló", "failed"),
    ("refit_actor", "worker"): ("el trabajador", "the worker"),
    ("refit_actor", "cli"): ("la línea de órdenes", "the command line"),
    ("column", "refit_at"): ("cuándo", "when"),
    ("column", "refit_by"): ("quién", "who"),
    ("column", "refit_outcome"): ("resultado", "outcome"),
    ("column", "refit_corrections"): ("correcciones", "corrections"),
    ("column", "refit_old"): ("antes (log-loss)", "before (log-loss)"),
    ("column", "refit_new"): ("después (log-loss)", "after (log-loss)"),
    ("column", "refit_model"): ("versión", "version"),
    # The columns of the tables the desk shows (sources, SLA policies, settings, trends).
    ("column", "network"): ("red", "network"),
    ("column", "source"): ("fuente", "source"),
    ("column", "healthy"): ("sana", "healthy"),
    ("column", "cursor"): ("cursor", "cursor"),
    ("column", "posts_ingested"): ("publicaciones leídas", "posts read"),
    ("column", "requests_made"): ("peticiones", "requests"),
    ("column", "last_success_at"): ("último éxito", "last success"),
    ("column", "last_error"): ("último error", "last error"),
    ("column", "last_error_at"): ("hora del último error", "last error at"),
    ("column", "next_run_at"): ("próxima pasada", "next run"),
    ("column", "throttled"): ("frenada", "throttled"),
    ("column", "resuming"): ("reanudando", "resuming"),
    ("column", "rate_limits"): ("límites de la API", "rate limits"),
    ("column", "month"): ("mes", "month"),
    ("column", "posts_read"): ("publicaciones leídas", "posts read"),
    ("column", "requests"): ("peticiones", "requests"),
    ("column", "estimated_cost_usd"): ("coste estimado (USD)", "estimated cost (USD)"),
    ("column", "post_budget"): ("presupuesto de publicaciones", "post budget"),
    ("column", "request_budget"): ("presupuesto de peticiones", "request budget"),
    ("column", "cost_budget_usd"): ("presupuesto de coste (USD)", "cost budget (USD)"),
    ("column", "used"): ("usado", "used"),
    ("column", "month_elapsed"): ("mes transcurrido", "month elapsed"),
    ("column", "slowed"): ("ritmo frenado", "slowed down"),
    ("column", "channel"): ("canal", "channel"),
    ("column", "lane"): ("carril", "lane"),
    ("column", "seconds"): ("segundos", "seconds"),
    ("column", "business_hours"): ("horario laboral", "business hours"),
    ("column", "setting"): ("ajuste", "setting"),
    ("column", "value"): ("valor", "value"),
    ("column", "topic"): ("tema", "topic"),
    ("column", "posts"): ("publicaciones", "posts"),
    ("column", "score"): ("puntuación", "score"),
    ("column", "answers"): ("respuestas", "answers"),
    ("column", "day"): ("día", "day"),
    ("column", "hour"): ("hora", "hour"),
    ("column", "share"): ("proporción", "share"),
    ("column", "group"): ("grupo", "group"),
    ("column", "baseline"): ("media anterior", "baseline"),
    ("column", "sentiment"): ("sentimiento", "sentiment"),
}

# The complaint cues and crisis kinds the lexicon names (classifier/lexicon.py), whichever language it named
# them in: label -> (Spanish, English).
CUES: dict[str, tuple[str, str]] = {
    "refund": ("reembolso", "refund"),
    "still waiting": ("sigue esperando", "still waiting"),
    "not received": ("no recibido", "not received"),
    "not working": ("no funciona", "not working"),
    "cannot access": ("no puede entrar", "cannot access"),
    "wrong charge": ("cobro indebido", "wrong charge"),
    "service failure": ("fallo de atención", "service failure"),
    "cancellation": ("cancelación", "cancellation"),
    "faulty product": ("producto dañado", "faulty product"),
    "long wait": ("espera larga", "long wait"),
    "why question": ("pregunta por qué", "why question"),
    "complaint words": ("palabras de queja", "complaint words"),
    "reembolso": ("reembolso", "refund"),
    "no funciona": ("no funciona", "not working"),
    "llevo X días": ("lleva días esperando", "waiting for days"),
    "sigo esperando": ("sigue esperando", "still waiting"),
    "cobro indebido": ("cobro indebido", "wrong charge"),
    "queja": ("queja", "complaint"),
    "producto dañado": ("producto dañado", "faulty product"),
}
CRISIS: dict[str, tuple[str, str]] = {
    "safety threat": ("amenaza a la seguridad", "safety threat"),
    "health risk": ("riesgo para la salud", "health risk"),
    "self-harm": ("autolesión", "self-harm"),
    "legal threat": ("amenaza legal", "legal threat"),
    "data breach": ("filtración de datos", "data breach"),
    "mass outage": ("caída masiva", "mass outage"),
}
# Why a keyword hit is chatter (classifier/relevance.py): code -> (Spanish, English).
CHATTER: dict[str, tuple[str, str]] = {
    "keyword not in the text": ("la palabra clave no aparece en el texto", "the keyword is not in the text"),
    "keyword inside another name": (
        "la palabra clave forma parte de otro nombre",
        "the keyword is part of another name",
    ),
    "keyword used as an ordinary word": (
        "la palabra clave se usa como palabra corriente",
        "the keyword is an ordinary word",
    ),
    "nothing aimed at us": (
        "ni pregunta, ni queja, ni nada dirigido a nosotros",
        "no question, complaint or word to us",
    ),
}

# Reasons that quote the post (anger words, negated words) keep the quoted words as they were written.
_REASONS: dict[str, tuple[str, str]] = {
    "complaint": ("queja {0}", "complaint {0}"),
    "negative": ("negativo {0}", "negative {0}"),
    "anger": ("palabras de enfado: {0}", "anger words: {0}"),
    "crisis": ("crisis: {0}", "crisis: {0}"),
    "dm": ("MD", "DM"),
    "reach": ("alcance del autor {0}", "author reach {0}"),
    "wait_h": ("esperando {0} h", "waiting {0} h"),
    "wait_min": ("esperando {0} min", "waiting {0} min"),
    "cues": ("señales: {0}", "cues: {0}"),
    "negated": ("negado: {0}", "negated: {0}"),
    "question": ("pregunta", "question"),
    "long": (
        "texto largo: se puntuaron los primeros {0} de {1} caracteres",
        "long text: scored the first {0} of {1} chars",
    ),
    "untrained": (
        "modelo sin entrenar: las puntuaciones no son fiables",
        "untrained model heads: scores are not meaningful",
    ),
    "automatic": ("mensaje automático: {0}", "automatic {0}"),
    "chatter": ("no va dirigido a nosotros: {0}", "not about us: {0}"),
    # Customer-aware ranking (models/customers.py customer_boost).
    "customer_open": ("el cliente tiene {0} caso(s) abierto(s) más", "customer has {0} other open case(s)"),
    "customer_rated": ("el cliente nos puntuó {0}/5 hace poco", "customer rated us {0}/5 recently"),
}


def _pick(lang: str, pair: tuple[str, str]) -> str:
    return pair[0] if (lang if lang in LANGUAGES else DEFAULT_LANGUAGE) == "es" else pair[1]


def code(lang: str, group: str, value: str | None) -> str:
    """Return the word for a stored code (``code("es", "state", "sent")`` → ``enviada``), or the code itself."""
    if value is None:
        return ""
    pair = CODES.get((group, value))
    return _pick(lang, pair) if pair else value


def formatter(lang: str, group: str) -> Callable[[object], str]:
    """Return a widget ``format_func`` that shows each option of ``group`` in ``lang``."""
    return lambda value: code(lang, group, str(value))


def number(lang: str, text: str) -> str:
    """Write a decimal number the way ``lang`` does: ``0.87`` → ``0,87`` and ``2,000`` → ``2.000`` in Spanish."""
    if lang != "es":
        return text
    return text.translate({ord("."): ",", ord(","): "."})


def _words(lang: str, table: dict[str, tuple[str, str]], listed: str) -> str:
    return ", ".join(_pick(lang, table[w]) if w in table else w for w in (p.strip() for p in listed.split(",")))


_PATTERNS: list[tuple[re.Pattern[str], Callable[[str, re.Match[str]], str]]] = [
    (re.compile(r"complaint (\d+\.\d+)"), lambda lang, m: _fill(lang, "complaint", number(lang, m[1]))),
    (re.compile(r"negative (\d+\.\d+)"), lambda lang, m: _fill(lang, "negative", number(lang, m[1]))),
    (re.compile(r"anger words: (.*)"), lambda lang, m: _fill(lang, "anger", m[1])),
    (re.compile(r"crisis: (.*)"), lambda lang, m: _fill(lang, "crisis", _words(lang, CRISIS, m[1]))),
    (re.compile(r"DM"), lambda lang, m: _fill(lang, "dm")),
    (re.compile(r"author reach (\S+)"), lambda lang, m: _fill(lang, "reach", number(lang, m[1]))),
    (re.compile(r"waiting (\d+(?:\.\d+)?) h"), lambda lang, m: _fill(lang, "wait_h", number(lang, m[1]))),
    (re.compile(r"waiting (\d+) min"), lambda lang, m: _fill(lang, "wait_min", m[1])),
    (re.compile(r"cues: (.*)"), lambda lang, m: _fill(lang, "cues", _words(lang, CUES, m[1]))),
    (re.compile(r"negated: (.*)"), lambda lang, m: _fill(lang, "negated", m[1])),
    (re.compile(r"question"), lambda lang, m: _fill(lang, "question")),
    (
        re.compile(r"long text: scored the first ([\d,]+) of ([\d,]+) chars"),
        lambda lang, m: _fill(lang, "long", number(lang, m[1]), number(lang, m[2])),
    ),
    (re.compile(r"untrained model heads: .*"), lambda lang, m: _fill(lang, "untrained")),
    (re.compile(r"not about us: (.*)"), lambda lang, m: _fill(lang, "chatter", _words(lang, CHATTER, m[1]))),
    (re.compile(r"customer open cases (\d+)"), lambda lang, m: _fill(lang, "customer_open", m[1])),
    (re.compile(r"customer rated (\d)/5"), lambda lang, m: _fill(lang, "customer_rated", m[1])),
]


def _fill(lang: str, key: str, *values: str) -> str:
    return _pick(lang, _REASONS[key]).format(*values)


def reason(lang: str, text: str) -> str:
    """Return one of the classifier's reasons (``"waiting 2.5 h"``) in ``lang``; an unknown one as it is."""
    for pattern, render in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return render(lang, match)
    return text


# Notes the desk itself writes on replies (responder/actions.py, lifecycle.py, sla_sweep.py, care.py).
NOTES: dict[str, tuple[str, str]] = {
    "post dismissed": ("publicación descartada", "post dismissed"),
    "post escalated": ("publicación escalada", "post escalated"),
    "superseded: the post was reassigned": (
        "sustituida: la publicación se reasignó",
        "superseded: the post was reassigned",
    ),
    "answered by hand on the network": ("respondida a mano en la red", "answered by hand on the network"),
    "not for us": ("no va con nosotros", "not for us"),
    "handled by a task": ("cerrada con una tarea", "handled by a task"),
    "satisfaction answer: no reply needed": (
        "respuesta a la encuesta: no necesita respuesta",
        "satisfaction answer: no reply needed",
    ),
}


def crisis_kind(lang: str, label: str) -> str:
    """Return a crisis kind the lexicon names (``"legal threat"``) in ``lang``; an unknown one as it is."""
    return _pick(lang, CRISIS[label]) if label in CRISIS else label


def note(lang: str, text: str) -> str:
    """Return a reply's note in ``lang`` when the desk wrote it (``"automatic ack"``); a person's note as it is."""
    if text in NOTES:
        return _pick(lang, NOTES[text])
    match = re.fullmatch(r"automatic (\w+)", text)
    if match and ("reply_kind", match[1]) in CODES:
        return _fill(lang, "automatic", code(lang, "reply_kind", match[1]))
    return text


_SPANISH_TIME = {
    "dateTime": "%A, %e de %B de %Y, %X",
    "date": "%d/%m/%Y",
    "time": "%H:%M:%S",
    "periods": ["AM", "PM"],
    "days": ["domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"],
    "shortDays": ["dom", "lun", "mar", "mié", "jue", "vie", "sáb"],
    "months": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
               "noviembre", "diciembre"],
    "shortMonths": ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"],
}  # fmt: skip
_ENGLISH_TIME = {
    "dateTime": "%a %b %e %X %Y",
    "date": "%m/%d/%Y",
    "time": "%H:%M:%S",
    "periods": ["AM", "PM"],
    "days": ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
    "shortDays": ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
    "months": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"],
    "shortMonths": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
}  # fmt: skip
# Axis dates: day and month name, and the hour where a chart is hourly (the names come from the locale).
DAY_FORMAT = "%e %b"
HOUR_FORMAT = "%e %b %H:%M"


def chart_locale(lang: str) -> dict[str, object]:
    """Return the Vega locale for ``lang``: month and day names on axes and tooltips, and the decimal mark."""
    if lang == "es":
        number: dict[str, object] = {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", "\u00a0€"]}
        return {"number": number, "time": _SPANISH_TIME}
    return {"number": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["$", ""]}, "time": _ENGLISH_TIME}
