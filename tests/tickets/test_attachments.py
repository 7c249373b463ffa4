"""Attachments without HTTP: what a file must be to be kept (name, type, content matching the
type, size), and the store on real files: content-addressed blobs written atomically, metadata rows
in the SQLite metadata file, scoped by workspace."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from supportlens.auth.repository import NotFound
from supportlens.tickets.attachment_checks import (
    MAX_FILENAME_LENGTH,
    AttachmentRejected,
    AttachmentTooLarge,
    CheckedFile,
    checked_file,
    media_type,
    safe_filename,
)
from supportlens.tickets.attachments import AttachmentStore
from tests.tickets import sample_files

LIMIT = 1024 * 1024


def check(filename: str, content_type: str, data: bytes, max_bytes: int = LIMIT) -> CheckedFile:
    return checked_file(filename, content_type, data, max_bytes=max_bytes)


def rejection(content_type: str, data: bytes, filename: str = "file") -> AttachmentRejected:
    with pytest.raises(AttachmentRejected) as caught:
        check(filename, content_type, data)
    return caught.value


# What a file must be


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/pdf", sample_files.pdf()),
        ("image/png", sample_files.png()),
        ("image/jpeg", sample_files.jpeg()),
        ("image/gif", sample_files.gif()),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", sample_files.docx()),
        ("application/zip", sample_files.docx()),
        ("application/msword", sample_files.ole()),
        ("application/vnd.ms-excel", sample_files.ole()),
        ("image/bmp", sample_files.bmp()),
        ("application/gzip", sample_files.gzipped()),
        ("text/plain", "Grüße aus Köln\n".encode()),
        ("text/csv", b"ticket,status\nT1,open\n"),
        ("application/json", b'{"ticket": "T1", "ok": true}'),
        ("application/vnd.api+json", b"[1, 2]"),
        ("application/octet-stream", sample_files.png()),  # no signature to hold it to
    ],
)
def test_files_whose_content_is_their_declared_type_pass(content_type: str, data: bytes) -> None:
    checked = check("report", content_type, data)
    assert checked == CheckedFile("report", content_type, data)


def test_a_png_declared_as_pdf_is_refused_naming_what_it_looks_like() -> None:
    refused = rejection("application/pdf", sample_files.png())
    assert (refused.field, refused.message) == ("content_type", "content looks like image/png")


def test_a_zip_declared_as_an_image_looks_like_the_plainest_zip_type() -> None:
    refused = rejection("image/png", sample_files.docx())
    assert refused.message == "content looks like application/zip"


def test_text_declared_binary_without_a_signature_says_what_it_is_not() -> None:
    refused = rejection("image/jpeg", b"just some words")
    assert (refused.field, refused.message) == ("content_type", "content is not a image/jpeg file")


def test_text_that_is_not_utf8_is_refused() -> None:
    refused = rejection("text/plain", "café".encode("latin-1"))
    assert refused.field == "content_type"
    assert refused.message == "content is not UTF-8 text (invalid byte at offset 3)"


def test_binary_declared_as_text_is_refused_naming_what_it_looks_like() -> None:
    assert rejection("text/plain", sample_files.png()).message == "content looks like image/png"
    assert rejection("text/csv", b"a,b\n\x00\x01").message == "content is binary, not text"


def test_json_must_parse() -> None:
    refused = rejection("application/json", b'{"ticket": ')
    assert refused.field == "content_type"
    assert refused.message.startswith("content is not valid JSON: ")


def test_empty_files_are_refused() -> None:
    assert rejection("text/plain", b"").field == "data"


def test_files_over_the_limit_are_too_large_at_one_byte_past_it() -> None:
    assert check("a.txt", "text/plain", b"x" * 100, max_bytes=100).data == b"x" * 100
    with pytest.raises(AttachmentTooLarge) as caught:
        check("a.txt", "text/plain", b"x" * 101, max_bytes=100)
    assert caught.value.field == "data"
    assert "101 bytes, more than the 100-byte limit" in caught.value.message


@pytest.mark.parametrize("declared", ["pdf", "", "application/", "/pdf", "app lication/pdf", "unknown/thing"])
def test_declared_types_must_be_media_types(declared: str) -> None:
    with pytest.raises(AttachmentRejected) as caught:
        media_type(declared)
    assert caught.value.field == "content_type"


def test_media_types_are_normalized_to_their_registered_names() -> None:
    assert media_type(" Text/Plain; charset=UTF-8 ") == "text/plain"
    assert media_type("image/jpg") == "image/jpeg"
    assert media_type("application/x-gzip") == "application/gzip"  # what the sniffer says, too
    assert check("photo.jpg", "image/jpg", sample_files.jpeg()).content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("network_diagnostics.pdf", "network_diagnostics.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ana\\report.pdf", "report.pdf"),
        ("inv\x00oice\n.pdf", "invoice.pdf"),
        ("photo\u202egpj.exe", "photogpj.exe"),  # a right-to-left override would show "exe.jpg"
        ("  spaced.txt  ", "spaced.txt"),
    ],
)
def test_file_names_lose_directories_and_control_characters(given: str, safe: str) -> None:
    assert safe_filename(given) == safe


@pytest.mark.parametrize("given", ["", "dir/", "..", "\x00\x01", "a/."])
def test_names_with_nothing_left_are_refused(given: str) -> None:
    with pytest.raises(AttachmentRejected) as caught:
        safe_filename(given)
    assert caught.value.field == "filename"


def test_long_names_are_shortened_before_their_extension() -> None:
    shortened = safe_filename("x" * 400 + ".pdf")
    assert len(shortened) == MAX_FILENAME_LENGTH
    assert shortened.endswith("x.pdf")
    assert len(safe_filename("y" * 400)) == MAX_FILENAME_LENGTH


# The store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AttachmentStore]:
    opened = AttachmentStore(tmp_path / "attachments", tmp_path / "metadata.sqlite", max_bytes=LIMIT)
    yield opened
    opened.close()


def blobs(store: AttachmentStore) -> list[Path]:
    return sorted(path for path in store.directory.rglob("*") if path.is_file())


def test_the_same_bytes_twice_are_one_blob_and_two_attachments(store: AttachmentStore) -> None:
    file = check("a.png", "image/png", sample_files.png())
    first = store.put("w1", "ticket_1", file)
    second = store.put("w1", "ticket_2", CheckedFile("b.png", "image/png", file.data))
    assert first.id != second.id
    assert first.sha256 == second.sha256
    stored = blobs(store)
    assert stored == [store.directory / first.sha256[:2] / first.sha256]
    assert store.content_path(first) == store.content_path(second) == stored[0]
    assert stored[0].read_bytes() == file.data
    assert [a.filename for a in (store.get("w1", first.id), store.get("w1", second.id))] == ["a.png", "b.png"]


def test_the_metadata_survives_a_reopen(store: AttachmentStore, tmp_path: Path) -> None:
    attachment = store.put("w1", "ticket_1", check("a.pdf", "application/pdf", sample_files.pdf()))
    reopened = AttachmentStore(tmp_path / "attachments", tmp_path / "metadata.sqlite", max_bytes=LIMIT)
    try:
        assert reopened.get("w1", attachment.id) == attachment
        assert reopened.content_path(attachment).read_bytes() == sample_files.pdf()
    finally:
        reopened.close()


def test_a_write_that_fails_leaves_neither_a_file_nor_a_row(
    store: AttachmentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes go to a temporary file first: a failure before the rename (here the disk refusing
    to sync) leaves no partial blob under the final name, no temporary file, and no row."""

    def failing_fsync(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        store.put("w1", "ticket_1", check("a.txt", "text/plain", b"hello"))
    monkeypatch.undo()
    assert blobs(store) == []
    assert store.list_for_ticket("w1", "ticket_1") == []
    kept = store.put("w1", "ticket_1", check("a.txt", "text/plain", b"hello"))
    assert [path.name for path in blobs(store)] == [kept.sha256]


def test_another_workspaces_attachment_is_not_found(store: AttachmentStore) -> None:
    attachment = store.put("w1", "ticket_1", check("a.txt", "text/plain", b"secret"))
    with pytest.raises(NotFound):
        store.get("w2", attachment.id)
    with pytest.raises(NotFound):
        store.get("w1", "att_missing")
    assert store.list_for_ticket("w2", "ticket_1") == []


def test_lists_by_ticket_and_by_comment_oldest_first(store: AttachmentStore) -> None:
    on_ticket = store.put("w1", "ticket_1", check("a.txt", "text/plain", b"a"))
    on_comment = store.put("w1", "ticket_1", check("b.txt", "text/plain", b"b"), comment_id="comment_1")
    also_on_comment = store.put("w1", "ticket_1", check("c.txt", "text/plain", b"c"), comment_id="comment_1")
    other_ticket = store.put("w1", "ticket_2", check("d.txt", "text/plain", b"d"), comment_id="comment_2")
    assert store.list_for_ticket("w1", "ticket_1") == [on_ticket, on_comment, also_on_comment]
    assert store.list_for_comments("w1", ["comment_1", "comment_2", "comment_3"]) == {
        "comment_1": [on_comment, also_on_comment],
        "comment_2": [other_ticket],
    }
    assert store.list_for_comments("w2", ["comment_1"]) == {}
    assert store.list_for_comments("w1", []) == {}
