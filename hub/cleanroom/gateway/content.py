"""Content rules: what an output or an answer may carry towards the browser.

Applied by the gateway to kernel messages (live outputs are "trusted" by JupyterLab, so
their HTML and JavaScript would run) and to notebooks read through the contents API
(a notebook the kernel writes and signs would be trusted too). Mime types that run code
are removed, HTML is sanitised (nh3: no script, no event handlers, no iframes), SVG and
Markdown that carry script are withheld, and images must decode as the type they claim.
Every removal leaves a notice, so the researcher sees what was withheld and why.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from typing import Any

import nh3

# Markup that runs code when a browser renders it: script elements, event handlers,
# javascript: URLs, frames and embedded objects, SVG's foreignObject, meta refresh.
_ACTIVE = re.compile(
    rb"<\s*(script|iframe|frame|object|embed|foreignobject|meta|base|link|form)\b"
    rb"|\bon[a-z]+\s*="
    rb"|javascript\s*:"
    rb"|vbscript\s*:"
    rb"|data\s*:\s*text/html",
    re.IGNORECASE,
)
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "image/bmp": (b"BM",),
}
NOTICE_PREFIX = "[clean room]"


def is_active(markup: str | bytes) -> bool:
    """Whether markup (HTML, SVG, Markdown) carries anything that runs code."""
    raw = markup.encode("utf-8", "replace") if isinstance(markup, str) else markup
    return _ACTIVE.search(raw) is not None


def sanitize_html(html: str) -> str:
    """HTML with everything that runs code removed (tables and text stay)."""
    return nh3.clean(html)


def _png_ok(data: bytes) -> bool:
    # Walk the chunks: each has a length, a type and a CRC; IHDR first, IEND last.
    pos = 8
    seen_ihdr = False
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return False
        if not seen_ihdr and kind != b"IHDR":
            return False
        seen_ihdr = True
        if (
            binascii.crc32(data[pos + 4 : pos + 8 + length])
            != struct.unpack(">I", data[pos + 8 + length : end])[0]
        ):
            return False
        pos = end
        if kind == b"IEND":
            return pos == len(data)
    return False


def _jpeg_ok(data: bytes) -> bool:
    return data.endswith(b"\xff\xd9") and len(data) > 4


def image_problem(mime: str, data: bytes, max_bytes: int) -> str | None:
    """Why ``data`` is not an acceptable ``mime`` image (None: it is)."""
    if len(data) > max_bytes:
        return f"an image of {len(data)} bytes is over the cap of {max_bytes} bytes"
    magics = _MAGIC.get(mime)
    if magics is None:
        return f"{mime} is not an image type the clean room shows"
    if not any(data.startswith(m) for m in magics):
        return f"the bytes are not a {mime} image"
    if mime == "image/png" and not _png_ok(data):
        return "the bytes are not a well-formed PNG image"
    if mime == "image/jpeg" and not _jpeg_ok(data):
        return "the bytes are not a well-formed JPEG image"
    if mime == "image/webp" and data[8:12] != b"WEBP":
        return "the bytes are not a WebP image"
    return None


def _decode_b64(value: Any) -> bytes | None:
    if isinstance(value, list):
        value = "".join(v for v in value if isinstance(v, str))
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def sanitize_bundle(
    data: dict[str, Any], blocked: frozenset[str], max_image_bytes: int
) -> list[str]:
    """Clean a mime bundle in place; returns what was withheld (for the notice)."""
    withheld: list[str] = []
    for mime in list(data):
        value = data[mime]
        low = mime.lower()
        text = "".join(value) if isinstance(value, list) else value
        if low in blocked or "javascript" in low or "ecmascript" in low:
            withheld.append(f"{mime} (runs code in the browser)")
            del data[mime]
        elif low == "text/html":
            if not isinstance(text, str):
                del data[mime]
                continue
            if is_active(text):
                withheld.append("script or event handlers in text/html")
            data[mime] = sanitize_html(text)
        elif low in ("image/svg+xml", "text/markdown", "text/latex") or low.endswith("+xml"):
            if not isinstance(text, str) or is_active(text):
                withheld.append(f"{mime} carrying script")
                del data[mime]
        elif low.startswith("image/"):
            raw = _decode_b64(value)
            problem = "not base64" if raw is None else image_problem(low, raw, max_image_bytes)
            if problem:
                withheld.append(f"{mime}: {problem}")
                del data[mime]
    if withheld and not data:
        data["text/plain"] = notice(withheld)
    return withheld


def notice(withheld: list[str]) -> str:
    """The sentence shown where something was withheld."""
    return (
        f"{NOTICE_PREFIX} Part of this output was withheld by the clean room's gateway: "
        + "; ".join(withheld)
        + ". Outputs cannot run code in your browser."
    )


def sanitize_notebook(model: dict[str, Any], blocked: frozenset[str], max_image: int) -> int:
    """Clean every output of a notebook contents model in place; how many cells changed
    (0: the model is as it came, and its bytes may go on as they are).

    Cells are also marked untrusted, so JupyterLab never runs what remains; a cell whose
    trust was dropped counts as changed.
    """
    content = model.get("content")
    if not isinstance(content, dict):
        return 0
    changed = 0
    for cell in content.get("cells") or []:
        if isinstance(cell, dict) and _sanitize_cell(cell, blocked, max_image):
            changed += 1
    return changed


def _sanitize_cell(cell: dict[str, Any], blocked: frozenset[str], max_image: int) -> bool:
    changed = False
    meta = cell.get("metadata")
    if isinstance(meta, dict) and meta.get("trusted"):
        meta["trusted"] = False
        changed = True
    if cell.get("cell_type") == "markdown":
        source = cell.get("source")
        text = "".join(source) if isinstance(source, list) else source
        if isinstance(text, str) and is_active(text):
            cell["source"] = nh3.clean(text)
            changed = True
    for output in cell.get("outputs") or []:
        if (
            isinstance(output, dict)
            and isinstance(output.get("data"), dict)
            and sanitize_bundle(output["data"], blocked, max_image)
        ):
            changed = True
    attachments = cell.get("attachments")
    if isinstance(attachments, dict):
        for bundle in attachments.values():
            if isinstance(bundle, dict) and sanitize_bundle(bundle, blocked, max_image):
                changed = True
    return changed


CSP = "; ".join(
    [
        "default-src 'self'",
        # Scripts only from the server's own static files: no inline script, no event
        # handler attributes, so HTML output cannot run anything. 'unsafe-eval' is kept
        # because JupyterLab needs it (measured: without it the shell draws but the
        # settings' compiled schema validators fail and no document opens). Output
        # content reaches eval only through the JavaScript renderer, whose mime types
        # the gateway removes from every message and notebook (tests/gateway).
        "script-src 'self' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
