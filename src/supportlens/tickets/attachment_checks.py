"""What an attachment may be: a file name safe to hand back, a valid media type, content that is
what that type says (judged by the bytes themselves), not empty and within the size limit.

Pure functions, no I/O: the store (tickets/attachments.py) only keeps files that passed
``checked_file``; the API turns ``AttachmentRejected`` into a 422 naming the field, and
``AttachmentTooLarge`` into a 413.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import orjson
import puremagic

MAX_FILENAME_LENGTH = 255
# An extension longer than this is part of the name, not worth keeping when a name is shortened.
_MAX_EXTENSION_LENGTH = 16

# RFC 6838: type "/" subtype, each a restricted name; the top-level types IANA registers.
_RESTRICTED_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"(?P<type>{_RESTRICTED_NAME})/(?P<subtype>{_RESTRICTED_NAME})")
_TOP_LEVEL_TYPES = frozenset(
    {
        "application",
        "audio",
        "example",
        "font",
        "haptics",
        "image",
        "message",
        "model",
        "multipart",
        "text",
        "video",
    }
)

# Other names in use for a registered type (by clients, or by the signature database).
_ALIASES = {
    "application/excel": "application/vnd.ms-excel",
    "application/mspowerpoint": "application/vnd.ms-powerpoint",
    "application/x-gzip": "application/gzip",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": "application/zip",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-icon": "image/vnd.microsoft.icon",
    "image/x-ms-bmp": "image/bmp",
}

# Binary types whose files begin with a signature the sniffer knows: a file declared as one of
# these must carry it.  Generic types first, so that a mismatch names the plainest look-alike (a
# zip file "looks like application/zip", though Office documents are zip files too).  Other binary
# types (application/octet-stream, vendor types) have no signature to hold them to and are stored
# as declared.
SIGNED_TYPES = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/vnd.microsoft.icon",
    "application/zip",
    "application/gzip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
)


class AttachmentRejected(ValueError):
    """The attachment cannot be stored; ``field`` names what is wrong (filename, content_type, data)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AttachmentTooLarge(AttachmentRejected):
    """The file is larger than the configured limit."""


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """A file that passed ``checked_file``: the only kind the store accepts."""

    filename: str
    content_type: str
    data: bytes


def checked_file(filename: str, content_type: str, data: bytes, *, max_bytes: int) -> CheckedFile:
    """The file with its name made safe and its type normalized, once its content is shown to be
    what the type says.  ``AttachmentTooLarge`` above ``max_bytes``, ``AttachmentRejected`` otherwise."""
    if not data:
        raise AttachmentRejected("data", "the file is empty")
    if len(data) > max_bytes:
        raise AttachmentTooLarge(
            "data", f"the file is {len(data)} bytes, more than the {max_bytes}-byte limit"
        )
    name = safe_filename(filename)
    media = media_type(content_type)
    check_content(media, data)
    return CheckedFile(name, media, data)


def safe_filename(name: str) -> str:
    """The last part of a path (a client's directories mean nothing here), without control or
    format characters (e.g. a right-to-left override that disguises an extension), at most
    ``MAX_FILENAME_LENGTH`` characters, shortened before its extension."""
    base = re.split(r"[/\\]", name)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if cleaned in {"", ".", ".."}:
        raise AttachmentRejected(
            "filename", "no file name is left once path and control characters are removed"
        )
    if len(cleaned) <= MAX_FILENAME_LENGTH:
        return cleaned
    stem, dot, extension = cleaned.rpartition(".")
    if not stem or len(extension) > _MAX_EXTENSION_LENGTH:
        return cleaned[:MAX_FILENAME_LENGTH]
    return stem[: MAX_FILENAME_LENGTH - len(extension) - 1].rstrip() + dot + extension


def media_type(declared: str) -> str:
    """``type/subtype`` in lower case, under its registered name when it has another
    (``image/jpg`` is ``image/jpeg``).  Parameters are dropped: text is served as UTF-8, which is
    the only text accepted."""
    essence = declared.partition(";")[0].strip().lower()
    match = _MEDIA_TYPE.fullmatch(essence)
    if match is None or match["type"] not in _TOP_LEVEL_TYPES:
        raise AttachmentRejected("content_type", f"{declared!r} is not a media type such as application/pdf")
    return _ALIASES.get(essence, essence)


def check_content(media: str, data: bytes) -> None:
    """``AttachmentRejected`` (on content_type) when ``data`` is not what ``media`` says: text
    types must be UTF-8 text, JSON types valid JSON, signed binary types must carry their
    signature."""
    if is_json(media):
        _check_text(data)
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise AttachmentRejected("content_type", f"content is not valid JSON: {exc}") from None
    elif is_text(media):
        _check_text(data)
    elif media in SIGNED_TYPES and media not in sniffed_types(data):
        raise AttachmentRejected("content_type", _mismatch(data, f"content is not a {media} file"))


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def is_text(media: str) -> bool:
    """Types whose content is text (and is served as UTF-8)."""
    return media.startswith("text/") or media == "application/xml" or media.endswith("+xml") or is_json(media)


def sniffed_types(data: bytes) -> list[str]:
    """The types the content's signature suggests, likeliest first (under registered names)."""
    try:
        matches = puremagic.magic_string(data)
    except puremagic.PureError:  # no known signature
        return []
    found: dict[str, None] = {}
    for match in matches:
        if match.mime_type:
            found.setdefault(_ALIASES.get(match.mime_type, match.mime_type))
    return list(found)


def _check_text(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AttachmentRejected(
            "content_type", _mismatch(data, f"content is not UTF-8 text (invalid byte at offset {exc.start})")
        ) from None
    if "\x00" in text:  # valid UTF-8, yet no text file holds NUL characters
        raise AttachmentRejected("content_type", _mismatch(data, "content is binary, not text"))


def _mismatch(data: bytes, otherwise: str) -> str:
    """What binary type the content looks like, when its signature says; ``otherwise`` when it
    says nothing (or only that it looks like some kind of text, which is no explanation)."""
    sniffed = [media for media in sniffed_types(data) if not is_text(media)]
    if not sniffed:
        return otherwise
    plainest = next((media for media in SIGNED_TYPES if media in sniffed), sniffed[0])
    return f"content looks like {plainest}"
