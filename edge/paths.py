"""Where the product finds its shipped data and keeps its state."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


def share_dir() -> Path:
    """Folder holding ``models/`` and ``calibration/``.

    In a source checkout (editable install) that is the repository root; in an
    installed wheel the same folders are bundled as ``edge/_share``.
    """
    checkout = _PACKAGE_DIR.parent
    if (checkout / "models" / "manifest.yaml").is_file():
        return checkout
    return _PACKAGE_DIR / "_share"


# Where the installer keeps the services' secrets (scripts/install); systemd hands them
# to each service as $CREDENTIALS_DIRECTORY (LoadCredential in the units).
CREDENTIALS_DIR = Path("/etc/store-edge/credentials")
# An installed box (scripts/install): its config, and the services' state folder
# (StateDirectory= of the units).
INSTALLED_CONFIG = Path("/etc/store-edge/site.yaml")
INSTALLED_STATE_DIR = Path("/var/lib/store-edge")


def installed_config() -> Path | None:
    """The installed box's config (:data:`INSTALLED_CONFIG`), or None where there is none
    (a checkout).

    Raises:
        ConfigError: this login may not look into its folder. The installer makes
            /etc/store-edge readable by root and the service's group only, and IT runs
            ``edge status`` from its own login: guessing "no installed box" would read the
            demo site and ``./var`` instead (and Python 3.11's ``is_file`` raises). The
            group alone is not enough either: ``/var/lib/store-edge`` is the service's,
            and ``edge status`` opens the database as the services do.
    """
    try:
        mode = os.stat(INSTALLED_CONFIG).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise ConfigError(
            f"cannot read {INSTALLED_CONFIG}: permission denied (the box's config and "
            "database are the store-edge service's); run the command with sudo, e.g. "
            "`sudo edge status`"
        ) from None
    return INSTALLED_CONFIG if stat.S_ISREG(mode) else None


def state_dir() -> Path:
    """Writable state folder: ``$EDGE_STATE_DIR``, systemd's ``$STATE_DIRECTORY``, the
    services' folder on an installed box (so that ``edge status`` or ``edge purge`` run
    by hand read the services' database, wherever they are run from), else ``./var``
    for engineers working in a checkout."""
    for variable in ("EDGE_STATE_DIR", "STATE_DIRECTORY"):
        value = os.environ.get(variable)
        if value:
            return Path(value.split(":")[0])
    if installed_config() is not None and INSTALLED_STATE_DIR.is_dir():
        return INSTALLED_STATE_DIR
    return Path.cwd() / "var"


def default_site_config() -> Path:
    """The embedded demo site: the shared PETS09-S2L1 recording."""
    return share_dir() / "calibration" / "pets09" / "site.yaml"
