"""Meta's Graph API as the networks it serves (Facebook Pages, Instagram) both speak it.

The client with its app-secret proof, the translation of Graph errors into Escucha's listener errors, and the
webhooks' subscription handshake and ``X-Hub-Signature-256`` check are one protocol, kept here once; each
network's folder says only what is its own (its name, its extra rate-limit codes, its refusal reasons).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import facebook
import requests

from ground.redact import redact
from networks.base import AuthFailed, PermanentFailure, RateLimited, TemporaryFailure

Json = dict[str, Any]
AUTH_CODES = frozenset({102, 190})
# 4, 17, 32, 613: Graph's app, user and page limits (a network may add its own, as Instagram's 80002).
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
# Graph's rate-limit errors carry no reset time and its usage windows roll over an hour: wait a while.
RATE_LIMIT_RETRY_AFTER = 300.0
# Errors a retry cannot fix on a send: permission/window (10, 200), bad parameter (100), user gone (551).
SEND_PERMANENT_CODES = frozenset({10, 100, 200, 551})
SIGNATURE_HEADER = "x-hub-signature-256"


class GraphClient(facebook.GraphAPI):
    """facebook-sdk's client plus ``appsecret_proof`` on every call when an app secret is configured."""

    def __init__(self, *, app_secret: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_secret = app_secret

    def request(
        self,
        path: str,
        args: Json | None = None,
        post_args: Json | None = None,
        files: Any = None,
        method: str | None = None,
    ) -> Any:
        """Send one Graph request, signed with the app secret proof when there is a secret."""
        if self.app_secret and self.access_token:
            proof = hmac.new(self.app_secret.encode(), self.access_token.encode(), hashlib.sha256).hexdigest()
            # facebook-sdk puts the token in post_args when there are any, else in the query: follow it.
            if post_args:
                post_args["appsecret_proof"] = proof
            else:
                args = {**(args or {}), "appsecret_proof": proof}
        return super().request(path, args=args, post_args=post_args, files=files, method=method)


def graph_client(*, token: str | None, app_secret: str | None, version: str, session: requests.Session) -> Any:
    """The one facebook-sdk client of an account, talking through ``session``."""
    graph = GraphClient(access_token=token, session=session, app_secret=app_secret)
    # facebook-sdk 3.1.0 only accepts versions up to 3.1 in its constructor; set the real one afterwards.
    graph.version = version
    return graph


def _subcode(exc: facebook.GraphAPIError) -> int | None:
    error = exc.result.get("error") if isinstance(exc.result, dict) else None
    value = error.get("error_subcode") if isinstance(error, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def graph_code(exc: BaseException) -> tuple[int | None, int | None]:
    """Graph's (code, error_subcode) behind a listener error, when facebook-sdk raised it."""
    cause = exc.__cause__
    if not isinstance(cause, facebook.GraphAPIError):
        return None, None
    return (cause.code if isinstance(cause.code, int) else None), _subcode(cause)


@contextmanager
def translated_errors(
    label: str,
    action: str,
    *,
    sending: bool = False,
    rate_limit_codes: frozenset[int] = RATE_LIMIT_CODES,
    send_reasons: Mapping[int, str] | None = None,
) -> Iterator[None]:
    """Translate facebook-sdk/requests errors raised inside the block into Escucha's listener errors.

    ``label`` names the network in the message; ``send_reasons`` gives a refusal's words by its subcode.
    """
    try:
        yield
    except facebook.GraphAPIError as exc:
        code = exc.code if isinstance(exc.code, int) else None
        if code in AUTH_CODES:
            raise AuthFailed(f"{label} {action}: token refused ({redact(str(exc.message))})") from exc
        if code in rate_limit_codes:
            raise RateLimited(f"{label} {action}: rate limited", retry_after=RATE_LIMIT_RETRY_AFTER) from exc
        if sending and code in SEND_PERMANENT_CODES:
            why = (send_reasons or {}).get(_subcode(exc) or 0) or redact(str(exc.message))
            raise PermanentFailure(f"{label} {action}: refused ({why})") from exc
        raise TemporaryFailure(f"{label} {action}: {redact(str(exc.message))}") from exc
    except (requests.RequestException, ValueError, KeyError) as exc:  # timeouts, bad JSON, no content-type
        # facebook-sdk puts access_token in the query string, and a connection error's text quotes the URL.
        raise TemporaryFailure(redact(f"{label} {action}: {type(exc).__name__}: {exc}")) from exc


def sign(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta puts on a webhook delivery of ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs ``body`` with the app secret (compared in constant time)."""
    if not header:
        return False
    return hmac.compare_digest(sign(app_secret, body).encode(), header.strip().encode("utf-8", "replace"))


def challenge(params: dict[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo when the subscription handshake names our verify token, else None."""
    mode, token, answer = params.get("hub.mode"), params.get("hub.verify_token"), params.get("hub.challenge")
    if mode != "subscribe" or token is None or answer is None or not verify_token:
        return None
    if not hmac.compare_digest(token.encode("utf-8", "replace"), verify_token.encode()):
        return None
    return answer


def webhook_time(value: Any) -> datetime | None:
    """A webhook time: unix seconds, or milliseconds (Messenger's ``timestamp``, some entries' ``time``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if value > 10**11 else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def graph_time_text(at: datetime | None) -> str | None:
    """A time written the way the Graph reads return it (``2021-08-13T08:25:28+0000``)."""
    return at.strftime("%Y-%m-%dT%H:%M:%S+0000") if at is not None else None
