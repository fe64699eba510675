"""schemathesis against the app's own OpenAPI schema: generated requests, valid and
not, never get a 500, and every answer matches what the schema documents."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from edge.config import load_site
from edge.web.app import create_app
from edge.web.dashboard import WebDeps
from tests.conftest import PETS_SITE
from tests.support.web_support import BASE_URL, NOW, shared_store_db, store_site, with_web

pytestmark = pytest.mark.system

TOKEN = "it-token-0123456789abcdef"
EXAMPLES = 10


@pytest.fixture(scope="module")
def web_app(tmp_path_factory):
    site = with_web(store_site(load_site(PETS_SITE)), access="pin", pin="2468", admin_token=TOKEN,
                    login_attempts_per_minute=100, cache_s=5)
    db_path: Path = shared_store_db(tmp_path_factory)
    app = create_app(WebDeps(site=site, db_path=db_path, clock=lambda: NOW, restart=lambda: None))
    with TestClient(app):  # runs the lifespan: app.state is ready while the tests run
        yield app


def test_api_conforms_to_its_schema(web_app):
    """Every operation, with schemathesis's default checks (no 5xx, documented status
    codes and content types, responses matching their schemas, auth enforced)."""
    # A Host the page answers (schemathesis's own is "testserver": refused, DNS rebinding).
    host = {"Host": BASE_URL.removeprefix("http://")}
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", web_app, headers=host)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}", **host})

        try:
            check()
        except Exception as error:  # collect every operation's failure, then report all
            failures.append(f"{operation.label}: {error}")
    assert operations >= 13
    assert not failures, "\n\n".join(failures)


def test_schema_lists_every_figure(web_app):
    with TestClient(web_app, base_url=BASE_URL) as web:
        paths = web.get("/api/openapi.json").json()["paths"]
    figures = ("summary", "occupancy", "footfall", "heatmap", "zones", "mix", "wifi", "health")
    assert {f"/api/v1/{name}" for name in figures} <= set(paths)
    assert {"/metrics", "/healthz", "/admin/config", "/admin/debug", "/admin/restart"} <= set(paths)
    assert "/login" not in paths  # HTML forms are not part of the API
