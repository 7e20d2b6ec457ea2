"""Logging for every process: one format, and secrets and phone numbers scrubbed on the way out.

The scrubbing is a formatter, so it sees the final text of each line, the traceback included,
whoever logged it (our code, uvicorn, RQ, SQLAlchemy, Twilio's client). Nothing here is the
first line of defence — code does not log personal data — but libraries log what they see:
uvicorn writes every websocket URL, with its `?token=`, at INFO; SQLAlchemy writes statement
parameters (names, phones, care notes) as soon as the root level is DEBUG.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from dispatch.core.config import get_settings

REDACTED = "[redacted]"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# A bearer token, wherever it is written: in a query string, an Authorization header, or bare.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)([?&](?:access_)?token=)[^&\s\"'#]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{REDACTED}"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"(?i)(password[\"']?\s*[:=]\s*[\"']?)[^\s&\"',}]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)(://[^:/@\s]+:)[^@\s]+@"), rf"\1{REDACTED}@"),  # a password in a URL
]
# Phone numbers: E.164 (+86 138 0000 0001, also with spaces or hyphens) and bare Chinese mobiles.
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?(?:86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)|(?<!\w)\+\d{8,15}(?!\d)")


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"{digits[-11:-8] if len(digits) >= 11 else ''}****{digits[-4:]}"


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """The text with bearer tokens, passwords, the configured secrets and phone numbers hidden."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _PHONE.sub(_mask_phone, text)


def configured_secrets() -> tuple[str, ...]:
    """The values of the secret settings (never shorter than 8 characters: a short one would
    blank out ordinary words)."""
    settings = get_settings()
    values = [
        settings.secret_key.get_secret_value() if settings.secret_key else "",
        settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else "",
    ]
    path = settings.var_dir / "secret_key"
    if not values[0] and path.is_file():
        values[0] = path.read_text().strip()
    return tuple(v for v in values if len(v) >= 8)


class ScrubbingFormatter(logging.Formatter):
    """A plain formatter whose output is scrubbed (uvicorn's `use_colors` is accepted and ignored)."""

    def __init__(
        self, fmt: str | None = None, datefmt: str | None = None, style: Any = "%", **_: Any
    ) -> None:
        super().__init__(fmt or FORMAT, datefmt, style)
        self._secrets = configured_secrets()

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), self._secrets)


# Libraries that log request payloads or statements at INFO/DEBUG: never below WARNING.
QUIET_LOGGERS = ("sqlalchemy", "twilio.http_client", "httpx", "httpcore", "urllib3", "websockets")


def setup_logging(level: str | None = None) -> None:
    """The root handler of a worker or scheduler process (RQ logs through it, as it finds one)."""
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or get_settings().log_level).upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def uvicorn_log_config(level: str | None = None) -> dict[str, Any]:
    """uvicorn's own logging configuration with every formatter scrubbing, and a root handler
    for the application's loggers (uvicorn configures none)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    formatter = {"()": f"{__name__}.ScrubbingFormatter", "fmt": FORMAT}
    config["formatters"] = {name: dict(formatter) for name in config["formatters"]}
    config["handlers"]["root"] = {
        "formatter": "default",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["root"], "level": (level or get_settings().log_level).upper()}
    config["loggers"].update({name: {"level": "WARNING"} for name in QUIET_LOGGERS})
    return config
