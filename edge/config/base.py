"""Base model of every config section, and the error its cross-field checks raise."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def checks_service(context: dict | None, name: str) -> bool:
    """Whether validation was asked to check what service ``name`` needs to run (see
    :func:`edge.config.loader.parse_site`)."""
    services = (context or {}).get("services", False)
    return services is True or (bool(services) and name in services)


class KeyProblem(ValueError):
    """A cross-field check's error that names the one key to fix.

    Pydantic reports an error raised by a model validator at the model itself: the
    line of the section and the whole section as the value. Raised with ``at``, the
    key path below that model (e.g. ``("zones", 3, "id")``), the loader reports that
    key's line and value instead (``edge/config/loader.py``).
    """

    def __init__(self, message: str, *, at: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.at = at
