"""Typed errors of the sync package (the CLI turns every :class:`EdgeError` into one line)."""

from __future__ import annotations

from edge.errors import DataFormatError, EdgeError


class PrivacyError(EdgeError):
    """An aggregate would publish a cell counting fewer than k visits: it is not sent."""


class ContractError(DataFormatError):
    """A message does not match the versioned MQTT contract (JSON schema)."""


class DownlinkRefused(EdgeError):
    """A downlink message was refused: malformed, unsigned, badly signed, stale or replayed."""


class BrokerError(EdgeError):
    """The MQTT broker cannot be reached or refused the connection."""
