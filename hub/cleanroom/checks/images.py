"""Image checks: PNG and JPEG structure, metadata, and bytes hidden after the image.

A figure can carry more than its pixels: text chunks (PNG tEXt/zTXt/iTXt/eXIf), Exif,
XMP and comments (JPEG), or a whole file appended after the image's end marker, which
viewers ignore. We parse the container, never decode pixels.
"""

from __future__ import annotations

import re
import struct
import zlib

from cleanroom.checks import detect
from cleanroom.checks.text import check_text
from cleanroom.checks.types import CheckContext, Finding, Verdict

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf"}
# JPEG segments that carry text or metadata: APP1 (Exif, XMP), APP13 (IPTC), COM.
_JPEG_METADATA = {0xE1: "APP1 (Exif/XMP)", 0xED: "APP13 (IPTC)", 0xFE: "COM (comment)"}


def check_png(data: bytes, context: CheckContext, location: str = "") -> list[Finding]:
    """Walk the PNG chunks: metadata text or trailing bytes fail, a sound PNG passes."""
    findings: list[Finding] = []
    pos, end_seen, chunks, width, height = 8, False, 0, 0, 0
    metadata: list[str] = []
    while pos + 12 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body_end = pos + 8 + length
        if body_end + 4 > len(data):
            return [_malformed("png", f"chunk {ctype!r} at byte {pos} runs past the end", location)]
        body = data[pos + 8 : body_end]
        (crc,) = struct.unpack(">I", data[body_end : body_end + 4])
        if zlib.crc32(ctype + body) != crc:
            return [_malformed("png", f"chunk {ctype!r} at byte {pos} has a bad CRC", location)]
        if chunks == 0 and (ctype != b"IHDR" or length != 13):
            return [_malformed("png", "the first chunk is not IHDR", location)]
        if ctype == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        if ctype in _PNG_TEXT_CHUNKS:
            metadata.append(ctype.decode("latin-1"))
        chunks += 1
        pos = body_end + 4
        if ctype == b"IEND":
            end_seen = True
            break
    if not end_seen:
        return [_malformed("png", "no IEND chunk: the image is truncated", location)]
    if metadata:
        findings.append(
            Finding(
                "image.metadata",
                Verdict.FAIL,
                f"the PNG carries metadata text chunks: {', '.join(sorted(set(metadata)))}",
                {"chunks": metadata},
                location,
            )
        )
    findings += _trailing(data, pos, location)
    if not findings:
        findings.append(_format_pass("png", width, height, context, location))
    return findings


def check_jpeg(data: bytes, context: CheckContext, location: str = "") -> list[Finding]:
    """Walk the JPEG segments to the end-of-image marker."""
    findings: list[Finding] = []
    metadata: list[str] = []
    pos, width, height, n = 2, 0, 0, len(data)
    end = None
    while pos < n:
        if data[pos] != 0xFF:
            return [_malformed("jpeg", f"expected a marker at byte {pos}", location)]
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            end = pos
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > n:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2 or pos + length > n:
            return [_malformed("jpeg", f"segment 0x{marker:02X} runs past the end", location)]
        if marker in _JPEG_METADATA:
            metadata.append(_JPEG_METADATA[marker])
        if marker in (0xC0, 0xC1, 0xC2) and length >= 7:
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
        pos += length
        if marker == 0xDA:
            # Entropy-coded data: 0xFF is followed by 0x00 (stuffing) or a restart
            # marker inside a scan; anything else is the next segment.
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    pos = n
                    break
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 2 if nxt != 0xFF else 1
                    continue
                break
    if end is None:
        return [_malformed("jpeg", "no end-of-image marker: the image is truncated", location)]
    if metadata:
        findings.append(
            Finding(
                "image.metadata",
                Verdict.FAIL,
                f"the JPEG carries metadata segments: {', '.join(sorted(set(metadata)))}",
                {"segments": metadata},
                location,
            )
        )
    findings += _trailing(data, end, location)
    if not findings:
        findings.append(_format_pass("jpeg", width, height, context, location))
    return findings


def check_other_image(
    data: bytes, kind: str, context: CheckContext, location: str = ""
) -> list[Finding]:
    """SVG, PDF, GIF: not parsed fully, so an officer looks; text in them is checked."""
    findings = [
        Finding(
            "image.format",
            context.policy.images.other_formats_verdict,
            f"{kind.upper()} files can carry text, scripts and embedded data; an officer "
            "must look at it",
            {"format": kind, "passing_formats": context.policy.images.pass_formats},
            location,
        )
    ]
    if kind == detect.SVG:
        text = data.decode("utf-8", errors="replace")
        if re.search(r"<script|javascript:|<foreignObject", text, re.IGNORECASE):
            findings.append(
                Finding(
                    "image.active_content",
                    Verdict.FAIL,
                    "the SVG contains scripts or embedded HTML",
                    {},
                    location,
                )
            )
        visible = re.sub(r"<[^>]{0,10000}>", " ", text)
        findings += check_text(visible, context, location=location)
    elif kind == detect.PDF:
        findings += check_text(data.decode("latin-1"), context, location=location)
    return findings


def _format_pass(
    kind: str, width: int, height: int, context: CheckContext, location: str
) -> Finding:
    ok = kind in context.policy.images.pass_formats
    return Finding(
        "image.format",
        Verdict.PASS if ok else context.policy.images.other_formats_verdict,
        f"a well-formed {kind.upper()} of {width}x{height} pixels without metadata"
        + ("" if ok else f"; {kind.upper()} is not a passing format in the policy"),
        {"format": kind, "width": width, "height": height},
        location,
    )


def _trailing(data: bytes, end: int, location: str) -> list[Finding]:
    extra = len(data) - end
    if extra <= 0:
        return []
    return [
        Finding(
            "image.trailing_bytes",
            Verdict.FAIL,
            f"{extra} bytes follow the end of the image (hidden data)",
            {"offset": end, "bytes": extra, "starts_with": data[end : end + 16].hex()},
            location,
        )
    ]


def _malformed(kind: str, why: str, location: str) -> Finding:
    return Finding(
        "image.malformed",
        Verdict.FAIL,
        f"malformed {kind.upper()}: {why}",
        {"format": kind},
        location,
    )
