"""Attachments over HTTP on both engines: multipart upload, listing and download with the right
headers; problem details for files that are not what they say (422 naming the field), too large
(413, also for bodies streamed without a length) or asked for by the wrong caller (404 for another
workspace, 401 without a token, 403 without the scope); and base64 attachments in JSON bodies
through ``decode_inline`` and ``AttachmentBodyRoute``, on a route made here."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from supportlens.api.attachments import AttachmentBodyRoute, AttachmentUpload, decode_inline, json_body_limit
from supportlens.api.deps import runtime
from supportlens.app import create_app
from supportlens.auth.tokens import Scope
from supportlens.runtime import Runtime
from tests.api.conftest import Api, open_api
from tests.api.test_configuration_api import field_errors, problem
from tests.conftest import make_settings
from tests.tickets import sample_files

LIMIT = 4096  # attachment_max_bytes in these tests
MAX_BODY = 2048  # max_body_bytes: less than a JSON body with a largest file


@pytest.fixture
def api(engine_name: str, tmp_path: Path) -> Iterator[Api]:
    yield from open_api(engine_name, tmp_path, attachment_max_bytes=LIMIT, max_body_bytes=MAX_BODY)


def new_ticket(api: Api, customer_id: str | None = None) -> dict[str, Any]:
    body = {"title": "Network connectivity issues", "description": "MPLS drops", "customer_id": customer_id}
    response = api.client.post("/v1/support/tickets", json=body, headers=api.headers())
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()["ticket"]
    return ticket


def upload(
    api: Api, ticket_ref: str, filename: str, data: bytes, content_type: str, token: str | None = None
) -> httpx.Response:
    return api.client.post(
        f"/v1/support/tickets/{ticket_ref}/attachments",
        files={"file": (filename, data, content_type)},
        headers=api.headers(token),
    )


def uploaded(api: Api, ticket_ref: str, filename: str, data: bytes, content_type: str) -> dict[str, Any]:
    response = upload(api, ticket_ref, filename, data, content_type)
    assert response.status_code == 201, response.text
    info: dict[str, Any] = response.json()
    return info


def other_workspace_token(api: Api) -> str:
    workspace = api.runtime.metadata.create_workspace("globex")
    _, secret = api.runtime.metadata.create_token(workspace.id, "admin", {Scope.ADMIN})
    return secret


def test_an_upload_is_listed_and_downloads_as_it_was_sent(api: Api) -> None:
    ticket = new_ticket(api)
    png = sample_files.png()
    info = uploaded(api, ticket["number"], "circuit_test_results.png", png, "image/png")
    digest = hashlib.sha256(png).hexdigest()
    assert info["id"].startswith("att_")
    assert {
        k: info[k] for k in ("ticket_id", "comment_id", "filename", "content_type", "size", "sha256")
    } == {
        "ticket_id": ticket["id"],
        "comment_id": None,
        "filename": "circuit_test_results.png",
        "content_type": "image/png",
        "size": len(png),
        "sha256": digest,
    }
    assert info["download_url"] == f"http://testserver/v1/attachments/{info['id']}"

    listed = api.client.get(f"/v1/support/tickets/{ticket['id']}/attachments", headers=api.headers())
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"data": [info], "total": 1}

    download = api.client.get(info["download_url"], headers=api.headers())
    assert download.status_code == 200
    assert download.content == png
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"] == 'attachment; filename="circuit_test_results.png"'
    assert download.headers["etag"] == f'"{digest}"'
    assert download.headers["x-content-type-options"] == "nosniff"

    again = api.client.get(
        info["download_url"], headers={**api.headers(), "If-None-Match": f'W/"other", "{digest}"'}
    )
    assert again.status_code == 304
    assert again.content == b""


def test_text_downloads_as_utf8_under_a_safe_name(api: Api) -> None:
    ticket = new_ticket(api)
    text = "Ping: 12 ms, Grüße\n".encode()
    info = uploaded(api, ticket["id"], "../logs/ping résumé.txt", text, "text/plain")
    assert info["filename"] == "ping résumé.txt"
    download = api.client.get(f"/v1/attachments/{info['id']}", headers=api.headers())
    assert download.content == text
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert (
        download.headers["content-disposition"] == "attachment; filename*=utf-8''ping%20r%C3%A9sum%C3%A9.txt"
    )


def test_content_that_is_not_its_declared_type_is_a_422_naming_the_field(api: Api) -> None:
    ticket = new_ticket(api)
    response = upload(api, ticket["id"], "network_diagnostics.pdf", sample_files.png(), "application/pdf")
    assert field_errors(response) == {"file.content_type": "content looks like image/png"}
    not_text = upload(api, ticket["id"], "notes.txt", "café".encode("latin-1"), "text/plain")
    assert field_errors(not_text) == {
        "file.content_type": "content is not UTF-8 text (invalid byte at offset 3)"
    }
    assert field_errors(upload(api, ticket["id"], "empty.txt", b"", "text/plain")) == {
        "file.data": "the file is empty"
    }
    listed = api.client.get(f"/v1/support/tickets/{ticket['id']}/attachments", headers=api.headers())
    assert listed.json()["total"] == 0


def test_files_past_the_size_limit_are_413(api: Api) -> None:
    ticket = new_ticket(api)
    assert upload(api, ticket["id"], "max.txt", b"x" * LIMIT, "text/plain").status_code == 201
    over = upload(api, ticket["id"], "over.txt", b"x" * (LIMIT + 1), "text/plain")
    assert (
        problem(over, 413)["detail"]
        == f"file.data: the file is {LIMIT + 1} bytes, more than the {LIMIT}-byte limit"
    )
    far_over = upload(api, ticket["id"], "big.bin", b"x" * 200_000, "application/octet-stream")
    assert "request body is larger than" in problem(far_over, 413)["detail"]
    listed = api.client.get(f"/v1/support/tickets/{ticket['id']}/attachments", headers=api.headers())
    assert [a["filename"] for a in listed.json()["data"]] == ["max.txt"]


def test_a_body_streamed_without_a_length_is_cut_off_at_the_limit(api: Api) -> None:
    ticket = new_ticket(api)
    boundary = "supportlens-test-boundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for _ in range(1000):  # 16 MB, sent in chunks without a Content-Length
            yield b"x" * 16384
        yield f"\r\n--{boundary}--\r\n".encode()

    response = api.client.post(
        f"/v1/support/tickets/{ticket['id']}/attachments",
        content=body(),
        headers={**api.headers(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in response.request.headers
    limit = LIMIT + 64 * 1024  # the file and room for the multipart framing
    assert problem(response, 413)["detail"] == f"request body is larger than {limit} bytes"
    assert not any(path.is_file() for path in (api.runtime.settings.data_dir / "attachments").rglob("*"))


def test_another_workspaces_attachment_is_not_found(api: Api) -> None:
    ticket = new_ticket(api)
    info = uploaded(api, ticket["id"], "a.pdf", sample_files.pdf(), "application/pdf")
    stranger = other_workspace_token(api)
    unknown = problem(api.client.get("/v1/attachments/att_0000", headers=api.headers(stranger)), 404)
    theirs = problem(api.client.get(f"/v1/attachments/{info['id']}", headers=api.headers(stranger)), 404)
    assert theirs["detail"] == f"no attachment {info['id']!r}"
    assert unknown["detail"] == "no attachment 'att_0000'"
    listed = api.client.get(f"/v1/support/tickets/{ticket['id']}/attachments", headers=api.headers(stranger))
    problem(listed, 404)
    problem(upload(api, ticket["id"], "b.pdf", sample_files.pdf(), "application/pdf", stranger), 404)


def test_a_token_held_to_some_tickets_sees_only_their_files(api: Api) -> None:
    mine = new_ticket(api, customer_id="C1")
    theirs = new_ticket(api, customer_id="C2")
    mine_file = uploaded(api, mine["id"], "a.txt", b"mine", "text/plain")
    their_file = uploaded(api, theirs["id"], "b.txt", b"theirs", "text/plain")
    held = api.token(Scope.READ, fixed_filters={"customer_id": "C1"})
    assert api.client.get(f"/v1/attachments/{mine_file['id']}", headers=api.headers(held)).content == b"mine"
    problem(api.client.get(f"/v1/attachments/{their_file['id']}", headers=api.headers(held)), 404)


def test_no_token_is_401_and_scopes_decide_reading_and_writing(api: Api) -> None:
    ticket = new_ticket(api)
    info = uploaded(api, ticket["id"], "a.gif", sample_files.gif(), "image/gif")
    download = f"/v1/attachments/{info['id']}"
    listing = f"/v1/support/tickets/{ticket['id']}/attachments"
    problem(api.client.get(download), 401)
    problem(api.client.get(listing), 401)
    problem(api.client.post(listing, files={"file": ("a.gif", sample_files.gif(), "image/gif")}), 401)
    problem(api.client.get(download, headers=api.headers("sl_not-a-token")), 401)

    reader = api.token(Scope.READ)
    assert api.client.get(download, headers=api.headers(reader)).content == sample_files.gif()
    assert api.client.get(listing, headers=api.headers(reader)).json()["total"] == 1
    problem(upload(api, ticket["id"], "b.gif", sample_files.gif(), "image/gif", reader), 403)
    problem(api.client.get(download, headers=api.headers(api.token(Scope.APPEND))), 403)
    agent = api.token(Scope.TICKETS)
    assert upload(api, ticket["id"], "c.gif", sample_files.gif(), "image/gif", agent).status_code == 201


def test_uploads_need_a_ticket_and_a_multipart_file(api: Api) -> None:
    problem(upload(api, "ticket_missing", "a.pdf", sample_files.pdf(), "application/pdf"), 404)
    ticket = new_ticket(api)
    path = f"/v1/support/tickets/{ticket['id']}/attachments"
    not_multipart = api.client.post(
        path, content=sample_files.pdf(), headers={**api.headers(), "Content-Type": "application/pdf"}
    )
    problem(not_multipart, 415)
    as_a_field = api.client.post(
        path,
        data={"file": "not a file"},
        files={"other": ("x.txt", b"x", "text/plain")},
        headers=api.headers(),
    )
    assert list(field_errors(as_a_field)) == ["file"]
    malformed = api.client.post(
        path, content=b"--nope\r\n", headers={**api.headers(), "Content-Type": "multipart/form-data"}
    )
    problem(malformed, 400)


# Base64 attachments in JSON bodies, as ticket create and comments take them


class Inline(BaseModel):
    attachments: list[AttachmentUpload]


probe = APIRouter(route_class=AttachmentBodyRoute)


@probe.post("/v1/probe/inline")
def inline(request: Request, body: Inline) -> dict[str, list[str]]:
    files = decode_inline(body.attachments, max_bytes=runtime(request).attachments.max_bytes)
    return {"files": [f"{file.filename} {file.content_type} {len(file.data)}" for file in files]}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings("duckdb", tmp_path, attachment_max_bytes=LIMIT, max_body_bytes=MAX_BODY))
    app.include_router(probe)
    with TestClient(app) as started:
        yield started


def attachment(filename: str, content_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "filename": filename,
        "content_type": content_type,
        "data": base64.b64encode(data).decode(),
        **extra,
    }


def test_inline_files_are_decoded_and_checked(client: TestClient) -> None:
    wrapped = "\n".join(base64.encodebytes(sample_files.png()).decode().split())  # line breaks allowed
    body = {
        "attachments": [
            attachment(
                "network_diagnostics.pdf", "application/pdf", sample_files.pdf(), size=len(sample_files.pdf())
            ),
            {"filename": "circuit.png", "content_type": "image/png", "data": wrapped},
        ]
    }
    response = client.post("/v1/probe/inline", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "files": [
            f"network_diagnostics.pdf application/pdf {len(sample_files.pdf())}",
            f"circuit.png image/png {len(sample_files.png())}",
        ]
    }


def test_inline_files_that_are_wrong_name_their_field(client: TestClient) -> None:
    good = attachment("a.pdf", "application/pdf", sample_files.pdf())
    cases = [
        (
            {
                "filename": "x.pdf",
                "content_type": "application/pdf",
                "size": 245760,
                "data": "base64_encoded_file_data",
            },
            "data",
        ),
        (
            {"filename": "x.pdf", "content_type": "application/pdf", "data": "JVBERi0\u00e9"},
            "data",
        ),  # not ASCII
        (attachment("a.pdf", "application/pdf", sample_files.pdf(), size=1), "size"),
        (attachment("a.pdf", "application/pdf", sample_files.png()), "content_type"),
        (attachment("a.pdf", "pdf", sample_files.pdf()), "content_type"),
        (attachment("/", "application/pdf", sample_files.pdf()), "filename"),
    ]
    for wrong, field in cases:
        response = client.post("/v1/probe/inline", json={"attachments": [good, wrong]})
        assert list(field_errors(response)) == [f"attachments[1].{field}"], wrong
    seed_placeholder = client.post("/v1/probe/inline", json={"attachments": [cases[0][0]]})
    assert field_errors(seed_placeholder)["attachments[0].data"].startswith("not valid base64: ")


def test_json_bodies_carry_a_largest_file_and_no_more(client: TestClient) -> None:
    largest = client.post(
        "/v1/probe/inline", json={"attachments": [attachment("max.txt", "text/plain", b"x" * LIMIT)]}
    )
    assert largest.status_code == 200, largest.text  # a body past max_body_bytes, within the attachment room
    over = client.post(
        "/v1/probe/inline", json={"attachments": [attachment("over.txt", "text/plain", b"x" * (LIMIT + 1))]}
    )
    assert problem(over, 413)["detail"].startswith("attachments[0].data: the file is 4097 bytes")
    limit = json_body_limit(client.app.state.runtime.settings)
    assert limit == MAX_BODY + 4 * -(-LIMIT // 3)
    two = {"attachments": [attachment(f"{n}.txt", "text/plain", b"x" * LIMIT) for n in range(2)]}
    problem(client.post("/v1/probe/inline", json=two), 413)

    def streamed() -> Iterator[bytes]:
        yield b'{"attachments": [{"filename": "a.txt", "content_type": "text/plain", "data": "'
        for _ in range(100):
            yield b"eHh4" * 1000
        yield b'"}]}'

    chunked = client.post(
        "/v1/probe/inline", content=streamed(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in chunked.request.headers
    assert problem(chunked, 413)["detail"] == f"request body is larger than {limit} bytes"


def test_runtime_opens_the_store_under_the_data_directory(api: Api) -> None:
    runtime_: Runtime = api.runtime
    assert runtime_.attachments.directory == runtime_.settings.data_dir / "attachments"
    assert runtime_.attachments.max_bytes == LIMIT
