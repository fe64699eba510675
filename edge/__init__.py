"""On-box runtime of the in-store analytics appliance.

Data flows one way: frames -> detections -> tracks -> floor trajectories -> visits
-> traits -> aggregates (``sync``) -> MQTT.
"""

import importlib
import sys

__version__ = "0.1.0"


def _import_sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils with pandas hidden from it, before any module of the project.

    sqlite-utils imports pandas whenever it is installed, only to store
    ``pandas.Timestamp`` values as text; nothing here stores pandas objects. Where the
    ``eval`` extra is installed (motmetrics needs pandas: the development venv), that
    cost every process about 40 MB, a camera worker included (issue 18: a worker
    peaked above its 200 MB target). Pandas is hidden during this one import only:
    the evaluators that use it still import it themselves.
    """
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` -> ImportError
    try:
        importlib.import_module("sqlite_utils")
    finally:
        del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()
