"""Twilio webhooks of API.md: `POST /hotline/twilio/{voice,gather,sms,status}`, form-encoded.

Every one is checked first with Twilio's RequestValidator against PUBLIC_BASE_URL + path (+ the
query string Twilio was given) and TWILIO_AUTH_TOKEN: a missing, tampered or wrong-URL signature
is 403 and nothing is read or written. Without TWILIO_AUTH_TOKEN or PUBLIC_BASE_URL no signature
can be checked, so the webhooks refuse everything (403) rather than trust unsigned posts.

Each endpoint owns its unit of work: persist the webhook (deduplicated), let the services write
their rows and outbox jobs, commit, answer TwiML. If a service refuses (an offer taken meanwhile),
the work is rolled back and a fallback answer is recorded in a fresh transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.errors import BadRequest, DomainError, Forbidden
from dispatch.core.validation import MAX_INT
from hotline import sms, twiml, voice
from hotline.models import WebhookKind
from hotline.service import Inbound

log = logging.getLogger(__name__)

router = APIRouter(prefix="/hotline/twilio", tags=["hotline"])

TWIML_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "TwiML", "content": {"text/xml": {}}},
    400: {"description": "A field Twilio always sends is missing"},
    403: {"description": "Missing or invalid X-Twilio-Signature, or webhooks not configured"},
}


def public_url(request: Request) -> str:
    """The URL Twilio signed: the public base (behind any proxy) + path + query string."""
    base = get_settings().public_base_url.rstrip("/")
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


async def twilio_params(request: Request) -> dict[str, str]:
    """The form Twilio posted, once its signature checks out; 403 otherwise."""
    settings = get_settings()
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if not token or not settings.public_base_url:
        raise Forbidden("Twilio webhooks are off: TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL must be set")
    signature = request.headers.get("x-twilio-signature", "")
    if not signature:
        raise Forbidden("missing X-Twilio-Signature")
    form = await request.form()
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    if not RequestValidator(token).validate(public_url(request), params, signature):
        raise Forbidden("X-Twilio-Signature does not match this request")
    return params


TwilioParams = Annotated[dict[str, str], Depends(twilio_params)]


def _field(params: dict[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise BadRequest(f"{name} is missing")
    return value


def _answer(work: Callable[[Session], str], fallback: Callable[[Session, str], str]) -> Response:
    try:
        with session_scope() as session:
            xml = work(session)
    except DomainError as exc:
        with session_scope() as session:
            xml = fallback(session, exc.detail)
    return Response(content=xml, media_type="text/xml")


@router.post("/voice", response_model=None, response_class=Response, responses=TWIML_RESPONSES)
def incoming_call(params: TwilioParams) -> Response:
    """An incoming call: the menu for a known caller, else (and after hours) the operator."""
    inbound = Inbound(WebhookKind.VOICE, _field(params, "CallSid"), params.get("From", ""))
    return _answer(
        lambda s: voice.incoming_call(s, inbound, now=utcnow()),
        lambda s, why: voice.key_failed(s, inbound, why),
    )


@router.post("/gather", response_model=None, response_class=Response, responses=TWIML_RESPONSES)
def key_pressed(params: TwilioParams, attempt: Annotated[int, Query(ge=0, le=9)] = 0) -> Response:
    """The key pressed in the menu (none: Digits is empty)."""
    inbound = Inbound(
        WebhookKind.GATHER,
        _field(params, "CallSid"),
        params.get("From", ""),
        digits=params.get("Digits", "").strip()[:8],
        attempt=attempt,
    )
    return _answer(
        lambda s: voice.key_pressed(s, inbound, now=utcnow()),
        lambda s, why: voice.key_failed(s, inbound, why),
    )


@router.post("/sms", response_model=None, response_class=Response, responses=TWIML_RESPONSES)
def incoming_sms(params: TwilioParams) -> Response:
    """An SMS: a provider's 1/Y or 2/N answers its newest pending offer."""
    inbound = Inbound(
        WebhookKind.SMS,
        _field(params, "MessageSid"),
        params.get("From", ""),
        body=params.get("Body", "")[:320],
    )
    return _answer(
        lambda s: sms.inbound_sms(s, inbound, now=utcnow()),
        lambda s, _why: sms.sms_failed(s, inbound),
    )


@router.post("/status", response_model=None, response_class=Response, responses=TWIML_RESPONSES)
def delivery_status(
    params: TwilioParams, m: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None
) -> Response:
    """A delivery callback for a message we sent (`m` is our message id, set by the gateway)."""
    inbound = Inbound(
        WebhookKind.STATUS,
        _field(params, "MessageSid"),
        body=_field(params, "MessageStatus").lower()[:20],
    )
    error_code = params.get("ErrorCode", "")[:10]

    def work(session: Session) -> str:
        return sms.delivery_status(session, inbound, error_code=error_code, message_id=m)

    return _answer(work, lambda _s, _why: twiml.empty())
