"""Small but well-formed files of the types attachments are checked against, made here."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib


def png() -> bytes:
    """A 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )


def jpeg() -> bytes:
    """The start of a JFIF JPEG: what a signature check reads."""
    return (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
    )


def gif() -> bytes:
    """A 1x1 transparent GIF."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def docx() -> bytes:
    """A zip with the parts of a Word document (fixed entry times: the same bytes every time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in (
            ("[Content_Types].xml", '<?xml version="1.0"?><Types/>'),
            ("word/document.xml", '<?xml version="1.0"?><document/>'),
        ):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def bmp() -> bytes:
    """A 1x1 red BMP."""
    info = struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + info + b"\x00\x00\xff\x00"


def ole() -> bytes:
    """The header of an OLE compound file, the container of .doc, .xls and .ppt files."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def gzipped() -> bytes:
    return gzip.compress(b"ticket log", mtime=0)  # the same bytes every time
