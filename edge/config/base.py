"""Base model of every config section, and the error its cross-field checks raise."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are immutable once loaded, and
    each knob's description is the docstring under it."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def checks_service(context: dict | None, name: str) -> bool:
    """Whether validation was asked to check what service ``name`` needs to run (see
    :func:`edge.config.loader.parse_site`)."""
    services = (context or {}).get("services", False)
    return services is True or (bool(services) and name in services)


Loc = tuple[str | int, ...]


def key_problems(model: str, problems: Sequence[tuple[Loc, str, object]]) -> ValidationError:
    """The error a cross-field check raises: one entry per ``(key path, message, value)``,
    the key path below the model being validated (e.g. ``("zones", 3, "id")``).

    Raised from a model validator, pydantic prefixes each path with the model's own, so
    the loader (``edge/config/loader.py``) names the line and value of each key to fix,
    not the line of the section with the whole section as the value.
    """
    return ValidationError.from_exception_data(model, [
        InitErrorDetails(type=PydanticCustomError("key", "{message}", {"message": message}),
                         loc=loc, input=value)
        for loc, message, value in problems
    ])


def existing_file(value: str, info: ValidationInfo, what: str) -> str:
    """``value`` as an absolute path to a file that is there; a relative path is taken
    from the site file's folder (``base_dir`` in the validation context).

    Raises:
        ValueError: no such file ("{what} file PATH does not exist or is not a file").
    """
    path = Path(value).expanduser()
    base_dir = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.is_file():
        raise ValueError(f"{what} file {path} does not exist or is not a file")
    return str(path.resolve())


def load_cert_chain(context: ssl.SSLContext, cert_file: str, key_file: str | None) -> None:
    """Give ``context`` the certificate and its key (the TLS of the broker client and of
    the status page).

    Raises:
        ValueError: a file that cannot be read or parsed, or a key that does not match.
    """
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(
            f"tls.cert_file/key_file {cert_file}, {key_file}: not a usable "
            f"PEM certificate and matching key ({error})"
        ) from None
