"""Schemathesis against the OpenAPI schema at /schema: generated requests to every /api/v1 operation, with a
real token, never get a server error, and answers match what the schema documents (status codes, bodies,
content types). Examples are bounded and derandomised so the run is short and repeatable."""

from __future__ import annotations

import logging

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.app.api_helpers import make_token
from tests.app.test_interactions import add_ready
from tests.conftest import make_settings

EXAMPLES_PER_OPERATION = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from app.server.app import create_app

    # A high rate limit: this test is about answers to odd input, the limit has its own test.
    app = create_app(make_settings(tmp_path_factory.mktemp("schemathesis") / "data", api_rate_per_second=100_000))
    with TestClient(app) as client:
        for i in range(6):
            add_ready(client, creator=f"maker{i % 3}", caption=f"clip {i} #fuzz")
        headers = make_token(client)
        yield client, headers


def test_every_api_operation_survives_generated_requests(api):
    client, headers = api
    schema = schemathesis.openapi.from_dict(client.get("/schema/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7
    logging.disable(logging.INFO)  # thousands of access-log lines otherwise
    try:
        for operation in operations:
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def check(case) -> None:  # noqa: ANN001
                kwargs = case.as_transport_kwargs(headers=headers)
                response = client.request(kwargs["method"], kwargs["url"], headers=kwargs["headers"],
                                          params=kwargs.get("params") or None, json=kwargs.get("json"),
                                          content=kwargs.get("data"))
                case.validate_response(response, checks=CHECKS)

            check()
    finally:
        logging.disable(logging.NOTSET)
