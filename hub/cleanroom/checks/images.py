"""Image checks: PNG and JPEG structure, metadata, and bytes hidden after the image.

A figure can carry more than its pixels: text chunks (PNG tEXt/zTXt/iTXt/eXIf), Exif,
XMP and comments (JPEG), or a whole file appended after the image's end marker, which
viewers ignore. We parse the container; only a well-formed PNG or JPEG is decoded (by
Pillow, with a pixel budget), to count the separate marks a figure draws: a scatter
plot of many points shows individual records.
"""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np

from cleanroom.checks import detect
from cleanroom.checks.text import check_text
from cleanroom.checks.types import CheckContext, Finding, Verdict

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf"}
# Text chunks that plotting libraries write on every figure (Matplotlib, Pillow) and
# that carry no data: a short "Software" or "Creation Time" passes.
_HARMLESS_PNG_KEYS = {"Software", "Creation Time"}
_HARMLESS_MAX_CHARS = 200
#: Pixels decoded at most to count a figure's marks (a bigger image is not counted).
MAX_DECODED_PIXELS = 40_000_000
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
        if ctype in _PNG_TEXT_CHUNKS and not _harmless_text_chunk(ctype, body):
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
        findings += check_marks(data, "png", context, location)
        findings.append(_format_pass("png", width, height, context, location))
    return findings


def _harmless_text_chunk(ctype: bytes, body: bytes) -> bool:
    if ctype != b"tEXt":
        return False
    key, _sep, value = body.partition(b"\x00")
    text = value.decode("latin-1")
    return (
        key.decode("latin-1") in _HARMLESS_PNG_KEYS
        and len(text) <= _HARMLESS_MAX_CHARS
        and not re.search(r"\d{5,}|@", re.sub(r"(version|v)?\d+(\.\d+)+", "", text))
    )


def _estimated_marks(mask: np.ndarray) -> int:
    """How many marker-sized points a mask of ink draws: the typical mark is the median
    round blob (a filled circle or square, 9-400 pixels); clumps of overlapping marks
    count as their area over it. Lines, bars and text are not round blobs."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if not n:
        return 0
    boxes = ndimage.find_objects(labels)
    areas = np.bincount(labels.ravel())[1:]
    heights = np.array([b[0].stop - b[0].start for b in boxes])
    widths = np.array([b[1].stop - b[1].start for b in boxes])
    fill = areas / (heights * widths)
    round_ = (
        (areas >= 9)
        & (areas <= 400)
        & (heights <= 2 * widths)
        & (widths <= 2 * heights)
        & (fill >= 0.5)
        & (fill <= 0.95)
    )
    if round_.sum() < 10:
        return int(round_.sum())
    typical = float(np.median(areas[round_]))
    return int(np.round(areas[areas >= 0.5 * typical] / typical).sum())


def count_marks(data: bytes) -> tuple[int, int] | None:
    """(coloured marks, dark marks) that a raster figure draws (see
    :func:`_estimated_marks`); None when it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_DECODED_PIXELS:
                return None
            pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
    except Exception:  # Pillow raises many kinds on odd files; the structure passed
        return None
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    return _estimated_marks(saturation > 60), _estimated_marks(pixels.max(axis=2) < 100)


def check_marks(data: bytes, kind: str, context: CheckContext, location: str) -> list[Finding]:
    """A figure that draws many separate small marks (a scatter of raw points) goes to
    an officer, with the count and the policy's limit."""
    limit = context.policy.images.max_plot_marks
    if kind == "svg":
        text = data.decode("utf-8", errors="replace")
        # Matplotlib draws text as <use> of glyphs ("#DejaVuSans-31"); markers are
        # <use> of a marker path ("#m0c8d...") or circles.
        marks = len(re.findall(r"<(?:circle|ellipse)\b", text)) + sum(
            1
            for href in re.findall(r"<use\b[^>]{0,500}?href=\"#([^\"]{1,200})\"", text)
            if not re.fullmatch(r"[A-Za-z][\w]*-[0-9a-f]{1,6}", href)
        )
        if marks < limit:
            return []
        evidence = {"marks": marks, "threshold": limit}
    else:
        counted = count_marks(data)
        if counted is None:
            return []
        coloured, dark = counted
        # Some text glyphs ("o", "0") are round dark blobs; a black scatter needs more.
        if coloured < limit and dark < 2 * limit:
            return []
        evidence = {"coloured_marks": coloured, "dark_marks": dark, "threshold": limit}
    return [
        Finding(
            "image.scatter_points",
            context.policy.images.scatter_verdict,
            f"the figure draws {max(v for k, v in evidence.items() if k != 'threshold')} "
            f"separate marks (policy: {limit}): a scatter of individual records shows each "
            "record; an officer must confirm the points are not raw rows",
            evidence,
            location,
        )
    ]


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
        findings += check_marks(data, "jpeg", context, location)
        findings.append(_format_pass("jpeg", width, height, context, location))
    return findings


def check_other_image(
    data: bytes, kind: str, context: CheckContext, location: str = ""
) -> list[Finding]:
    """SVG, PDF, GIF. An SVG is read (scripts, external links, text, marks) and passes
    when it is in the policy's passing formats and nothing is found; PDF and GIF are
    not parsed fully, so an officer looks; text in them is checked."""
    findings: list[Finding] = []
    if kind == detect.SVG:
        text = data.decode("utf-8", errors="replace")
        if re.search(r"<script|javascript:|<foreignObject|\bon\w{2,20}\s*=", text, re.IGNORECASE):
            findings.append(
                Finding(
                    "image.active_content",
                    Verdict.FAIL,
                    "the SVG contains scripts, event handlers or embedded HTML",
                    {},
                    location,
                )
            )
        external = re.findall(r"""(?:href|src)\s*=\s*["'](?:https?:|//|data:(?!image/png))""", text)
        if external:
            findings.append(
                Finding(
                    "image.external_content",
                    Verdict.REVIEW,
                    f"the SVG links or embeds {len(external)} resources from outside it",
                    {"links": len(external)},
                    location,
                )
            )
        visible = re.sub(r"<[^>]{0,10000}>", " ", text)
        findings += check_text(visible, context, location=location)
        findings += check_marks(data, "svg", context, location)
    elif kind == detect.PDF:
        pdf_findings, readable = _check_pdf(data, context, location)
        findings += pdf_findings
        if not readable:
            findings.append(
                Finding(
                    "image.format",
                    context.policy.images.other_formats_verdict,
                    "a PDF whose pages the checks could not read (no page with a readable "
                    "content stream); an officer must look at it",
                    {"format": kind},
                    location,
                )
            )
            return findings
    ok = kind in context.policy.images.pass_formats
    findings.append(
        Finding(
            "image.format",
            Verdict.PASS if ok else context.policy.images.other_formats_verdict,
            "an SVG without scripts or external content; its text and marks were checked"
            if ok and kind == detect.SVG
            else f"{kind.upper()} files can carry text, scripts and embedded data; an "
            "officer must look at it",
            {"format": kind, "passing_formats": context.policy.images.pass_formats},
            location,
        )
    )
    return findings


# PDF features that run code, carry files or hide content from a reader.
_PDF_ACTIVE = re.compile(
    rb"/(JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA|SubmitForm|ImportData|GoToR|GoToE)\b"
)
_PDF_STREAM = re.compile(rb"stream\r?\n")
_PDF_TEXT = re.compile(
    rb"\(((?:[^()\\]|\\.){0,2000})\)\s*(?:Tj|'|\")|\[((?:[^\]]){0,20000})\]\s*TJ"
)


def _pdf_streams(data: bytes, budget: int) -> tuple[list[bytes], int]:
    """The decompressed FlateDecode streams (within ``budget`` bytes) and how many
    streams could not be read."""
    out: list[bytes] = []
    unread, pos, used = 0, 0, 0
    while True:
        found = _PDF_STREAM.search(data, pos)
        if found is None:
            break
        end = data.find(b"endstream", found.end())
        if end < 0:
            unread += 1
            break
        header = data[max(0, found.start() - 400) : found.start()]
        body = data[found.end() : end]
        pos = end + 9
        if b"/FlateDecode" in header or b"/Fl " in header:
            try:
                raw = zlib.decompressobj().decompress(body, max(0, budget - used))
            except zlib.error:
                unread += 1
                continue
            used += len(raw)
            out.append(raw)
        elif b"/Filter" not in header:
            out.append(body)
        elif b"/DCTDecode" not in header:
            unread += 1  # images in other codecs are counted, not decoded
    return out, unread


def _check_pdf(data: bytes, context: CheckContext, location: str) -> tuple[list[Finding], bool]:
    """A PDF figure: active content and embedded files fail, text goes through the
    text checks, drawn marks are counted; readable when it has a page and content."""
    findings: list[Finding] = []
    limits = context.policy.archives
    streams, _unread = _pdf_streams(data, min(limits.max_uncompressed_bytes, 100 * len(data)))
    every = [data, *streams]
    active = sorted({m.decode() for chunk in every for m in _PDF_ACTIVE.findall(chunk)})
    if active:
        findings.append(
            Finding(
                "image.active_content",
                Verdict.FAIL,
                f"the PDF holds scripts, actions or embedded files ({', '.join(active)})",
                {"features": active},
                location,
            )
        )
    if b"/Encrypt" in data:
        findings.append(
            Finding(
                "image.format",
                Verdict.REVIEW,
                "the PDF is encrypted; its content cannot be read",
                {"format": "pdf"},
                location,
            )
        )
        return findings, True
    tail = data[data.rfind(b"%%EOF") + 5 :] if b"%%EOF" in data else b""
    if tail.strip():
        findings.append(
            Finding(
                "image.trailing_bytes",
                Verdict.FAIL,
                f"{len(tail)} bytes follow the PDF's last end-of-file marker (hidden data)",
                {"bytes": len(tail), "starts_with": tail[:16].hex()},
                location,
            )
        )
    text_parts: list[str] = []
    marks = 0
    for chunk in streams:
        marks += len(re.findall(rb"\sDo\b", chunk))
        for single, array in _PDF_TEXT.findall(chunk):
            # A TJ array splits a word at each kerning step: its pieces join up.
            pieces = [single] if single else re.findall(rb"\(((?:[^()\\]|\\.){0,2000})\)", array)
            text_parts.append(
                b"".join(re.sub(rb"\\(.)", rb"\1", p) for p in pieces).decode("latin-1")
            )
    metadata = " ".join(
        m.decode("latin-1")
        for m in re.findall(
            rb"/(?:Title|Author|Subject|Keywords|Creator|Producer)\s*\(([^)]{0,2000})\)", data
        )
    )
    findings += check_text(" ".join(text_parts) + "\n" + metadata, context, location=location)
    limit = context.policy.images.max_plot_marks
    if marks >= limit:
        findings.append(
            Finding(
                "image.scatter_points",
                context.policy.images.scatter_verdict,
                f"the figure draws {marks} separate marks (policy: {limit}): a scatter of "
                "individual records shows each record; an officer must confirm the points "
                "are not raw rows",
                {"marks": marks, "threshold": limit},
                location,
            )
        )
    readable = b"/Page" in data and any(re.search(rb"\b(re|l|Tj|TJ|Do)\b", c) for c in streams)
    return findings, readable


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
