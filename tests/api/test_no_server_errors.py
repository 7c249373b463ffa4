"""Nothing a client can put in a query string or a body makes the server answer 500."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportlens.analytics.pipes import PIPES
from tests.api.conftest import Api, open_api

VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1e309",
            "NaN",
            "2023-02-30",
            "9999-12-31",
            "0001-01-01",
            "2023-06-15T25:00:00",
            "yyyy",
            "HH",
            "yyyy-MM-dd HH:mm",
            "hour",
            "99999999999999999999",
            "'; DROP TABLE tickets; --",
        ]
    ),
    st.integers().map(str),
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    yield from open_api("duckdb", directory)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pipe=st.sampled_from(sorted(PIPES)), data=st.data())
def test_pipe_parameters(api: Api, pipe: str, data: st.DataObject) -> None:
    names = [p.name for p in PIPES[pipe].params] + ["unknown"]
    query = data.draw(st.dictionaries(st.sampled_from(names), VALUES, max_size=4))
    response = api.client.get(f"/v0/pipes/{pipe}.json", params=query, headers=api.headers())
    assert response.status_code in {200, 400}, (query, response.text)
    assert response.headers["content-type"].startswith("application/json")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)), gzipped=st.booleans())
def test_event_bodies(api: Api, body: bytes, gzipped: bool) -> None:
    headers = api.headers()
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = api.client.post("/v0/events?name=support_tickets&wait=true", content=body, headers=headers)
    assert response.status_code == 200, response.text
    counts = response.json()
    assert set(counts) == {"successful_rows", "quarantined_rows"}


EDGE_DATES = [
    "0001-01-01",
    "0001-01-01 00:00:00",
    "9999-12-31",
    "1969-12-31",
    "2200-01-01",
    "-1",
    "2023-02-30",
]


@pytest.mark.parametrize("value", EDGE_DATES)
def test_edge_dates_are_client_errors(api: Api, value: str) -> None:
    for name, pipe in PIPES.items():
        for param in pipe.params:
            if param.kind.value in {"start", "end"}:
                response = api.client.get(
                    f"/v0/pipes/{name}.json", params={param.name: value}, headers=api.headers()
                )
                assert response.status_code == 400, (name, param.name, value, response.text)
                assert param.name in response.json()["error"]
