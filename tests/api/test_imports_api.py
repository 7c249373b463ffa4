"""``POST /v1/imports/freshdesk-activities`` through the ASGI client."""

from __future__ import annotations

from supportlens.auth.tokens import Scope
from tests.api.conftest import Api
from tests.ingest.test_freshdesk_import import export_files


def test_import_over_the_api(api: Api) -> None:
    admin = api.token(Scope.ADMIN)
    files = export_files()
    answer = api.client.post(
        "/v1/imports/freshdesk-activities?file_name=day0.json", content=files[0], headers=api.headers(admin)
    )
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["events"] > 0
    assert summary["rejected_activities"] == 0
    assert summary["count_matches"] is True
    bad = api.client.post("/v1/imports/freshdesk-activities", content=b"[1, 2]", headers=api.headers(admin))
    assert bad.status_code == 422
    assert "activities_data" in bad.text or "object" in bad.text
    rows = api.client.get(
        "/v0/pipes/ticket_time_metrics.json", params={"as_of": "export_end"}, headers=api.headers(admin)
    )
    assert rows.status_code == 200, rows.text
    assert rows.json()["rows"] > 0
