"""Load ``site.yaml`` into a validated :class:`SiteConfig`, with precise errors.

Every problem is reported as ``FILE:LINE key.path: message (got VALUE)`` so store IT
can fix the file without reading a traceback. Secrets are never written in the
file: ``${NAME}`` is replaced by the environment variable ``NAME``, or by the
systemd credential ``$CREDENTIALS_DIRECTORY/NAME`` when one exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from edge.config.site import SiteConfig
from edge.config.yaml_loader import UniqueKeyLoader, format_key_path
from edge.errors import ConfigError, EdgeError
from edge.paths import CREDENTIALS_DIR

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Keys whose rejected values are never echoed into error messages (the journal).
_SECRET_KEYS = re.compile(r"pin|token|password|secret|key", re.IGNORECASE)
ModelT = TypeVar("ModelT", bound=BaseModel)


def _line_index(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each key path in a composed YAML document to its 1-based line."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            lines.update(_line_index(value_node, child))
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_index(item, (*path, index)))
    return lines


class MissingSecret(ConfigError):
    """A ``${NAME}`` in the site config with no environment variable or credential file."""


def _secret(name: str) -> str:
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        # LoadCredential=edge:/etc/store-edge/credentials loads each file there as edge_NAME.
        for candidate in (name, f"edge_{name}"):
            if (Path(credentials) / candidate).is_file():
                return (Path(credentials) / candidate).read_text().strip()
    if name in os.environ:
        return os.environ[name]
    # Name the file to write: the one this process was given, else the installer's folder.
    expected = Path(credentials) / name if credentials else CREDENTIALS_DIR / name
    hint = "" if credentials else (
        f" (commands run by hand read that folder only with CREDENTIALS_DIRECTORY="
        f"{CREDENTIALS_DIR}, as the services do)")
    raise MissingSecret(
        f"the site config refers to ${{{name}}} but there is no credential file {expected} "
        f"and no environment variable {name}: put the secret in {expected}{hint}"
    )


def _substitute(value: Any, *, required: bool = True) -> Any:
    """Replace each ``${NAME}`` by its secret. With ``required=False`` (commands that
    never use a secret, such as ``edge status``) a value that is only an unknown
    ``${NAME}`` reads as unset (null) instead of stopping the command."""
    if isinstance(value, str):
        if not required:
            whole = _PLACEHOLDER.fullmatch(value)
            if whole is not None:
                try:
                    return _secret(whole.group(1))
                except MissingSecret:
                    return None

        def secret(match: re.Match[str]) -> str:
            try:
                return _secret(match.group(1))
            except MissingSecret:
                if required:
                    raise
                return match.group(0)

        return _PLACEHOLDER.sub(secret, value)
    if isinstance(value, dict):
        return {key: _substitute(item, required=required) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, required=required) for item in value]
    return value


def _substitute_if_known(value: Any) -> Any:
    return _substitute(value, required=False)


def _format_path(path: tuple[Any, ...]) -> str:
    return format_key_path(path) or "(top level)"


_ABSENT = object()


def _nearest_line(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def validate_yaml(
    text: str,
    model: type[ModelT],
    *,
    source: str,
    what: str,
    error: type[EdgeError] = ConfigError,
    prepare: Callable[[dict], dict] = lambda raw: raw,
    context: dict[str, Any] | None = None,
) -> ModelT:
    """Parse YAML ``text`` and validate it as ``model``, raising ``error`` with every
    problem as ``SOURCE:LINE key.path: message (got VALUE)``: one line for one problem.

    Args:
        what: the document's name in messages, e.g. "site config".
        prepare: applied to the parsed mapping before validation (e.g. secrets).
    """
    try:
        node = yaml.compose(text, Loader=UniqueKeyLoader)
        raw = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        detail = getattr(problem, "problem", None) or str(problem)
        raise error(f"{where}: not valid YAML: {detail}") from None
    if not isinstance(raw, dict):
        raise error(f"{source}: expected a mapping of keys, the {what}'s sections")
    lines = _line_index(node) if node is not None else {}
    data = prepare(raw)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as invalid:
        problems = []
        for item in invalid.errors():
            path = tuple(item["loc"])
            value = item.get("input", _ABSENT) if item["type"] != "missing" else _ABSENT
            line = _nearest_line(lines, path)
            where = f"{source}:{line}" if line else source
            message = item["msg"].removeprefix("Value error, ")
            got = ""
            # A whole section is never echoed: it is long, and may hold secrets.
            if path and value is not _ABSENT and not isinstance(value, dict):
                secret = any(isinstance(p, str) and _SECRET_KEYS.search(p) for p in path)
                shown = "***" if secret else repr(value)
                got = f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
            problems.append(f"{where} {_format_path(path)}: {message}{got}")
        if len(problems) == 1:  # the common case stays one line in the journal
            raise error(f"invalid {what}: {problems[0]}") from None
        raise error(f"invalid {what}:\n  " + "\n  ".join(problems)) from None


def read_yaml_file(path: Path, *, what: str, error: type[EdgeError] = ConfigError) -> str:
    """The text of the YAML file at ``path``, raising ``error`` (naming the file, and the
    line of a byte that is not UTF-8) if it is missing, unreadable or not UTF-8 text.

    Args:
        what: the document's name in messages, e.g. "site config".
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror or problem}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as problem:
        # e.g. saved as Latin-1 by a Windows editor: 'Café' is b"Caf\xe9".
        line = data.count(b"\n", 0, problem.start) + 1
        column = problem.start - (data.rfind(b"\n", 0, problem.start) + 1) + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[problem.start]:02x} in column "
            f"{column}); save the {what} as UTF-8"
        ) from None


def parse_site(
    text: str,
    *,
    source: str = "<site>",
    base_dir: Path | None = None,
    services: bool | Collection[str] = False,
    secrets: bool = True,
) -> SiteConfig:
    """Validate a site config given as YAML text.

    Args:
        base_dir: folder that relative paths in the file are relative to.
        services: also check what these services need to run: True for all of them
            (``edge check-config``), or names such as ``"web"`` (a PIN unless the page
            is open-lan) and ``"camera:<id>"`` (its video file, if it reads one). Other
            commands (a replay, ``edge visits import``) need neither.
        secrets: False for commands that use no secret (``edge status`` only reads
            health): a ``${NAME}`` that cannot be read is left unset instead of
            refused.
    """
    return validate_yaml(
        text,
        SiteConfig,
        source=source,
        what="site config",
        prepare=_substitute if secrets else _substitute_if_known,
        context={"base_dir": base_dir or Path.cwd(), "services": services},
    )


def load_site(
    path: str | Path, *, services: bool | Collection[str] = False, secrets: bool = True
) -> SiteConfig:
    """Read, validate and cross-check the site config at ``path`` (``services`` and
    ``secrets``: as :func:`parse_site`)."""
    path = Path(path)
    text = read_yaml_file(path, what="site config")
    site = parse_site(
        text, source=str(path), base_dir=path.resolve().parent, services=services,
        secrets=secrets,
    )
    # Imported here: fitting needs OpenCV, which plain config tooling should not.
    from edge.calibration import fit_camera_calibrations

    fit_camera_calibrations(site, source=str(path))
    return site
