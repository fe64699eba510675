"""Typed errors of the sync package (the CLI turns every :class:`EdgeError` into one line)."""

from __future__ import annotations

from edge.errors import DataFormatError, EdgeError


class PrivacyError(EdgeError):
    """An aggregate would publish a cell counting fewer than k visits: it is not sent."""


class ContractError(DataFormatError):
    """A message does not match the versioned MQTT contract (JSON schema)."""


class WrongStore(ContractError):
    """A message names another store than the store level of the topic it came on."""


class DownlinkRefused(EdgeError):
    """A downlink message was refused: malformed, unsigned, badly signed, stale or replayed.

    ``nonce`` is the message's nonce when it could be read from an authentic body, so the
    central platform can tell which of its messages was refused.
    """

    def __init__(self, reason: str, nonce: str | None = None) -> None:
        super().__init__(reason)
        self.nonce = nonce


class BrokerError(EdgeError):
    """The MQTT broker cannot be reached or refused the connection."""


MAX_REASON_CHARS = 200


def short_reason(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` as one short line for a log line, a ``rejected`` row or ``config/state``.

    Whitespace runs (newlines included) become one space, characters UTF-8 cannot carry
    (lone surrogates) are escaped, and past ``limit`` characters the rest is cut to an
    ellipsis: a refusal names what was wrong, it does not copy the payload.
    """
    line = " ".join(text.split())
    line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    return line if len(line) <= limit else line[: limit - 1] + "…"
