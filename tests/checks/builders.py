"""Small byte-level builders for test files (PNG, JPEG, zip, tar, notebooks, pickles)."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any

import nbformat


def png(
    width: int = 4,
    height: int = 3,
    *,
    chunks: Sequence[tuple[bytes, bytes]] = (),
    trailing: bytes = b"",
) -> bytes:
    """A valid greyscale PNG, with extra chunks before IDAT and bytes after IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes(range(width)) for _ in range(height))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for kind, body in chunks:
        out += chunk(kind, body)
    out += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return out + trailing


def jpeg(*, exif: bool = False, comment: bytes = b"", trailing: bytes = b"") -> bytes:
    """A structurally valid baseline JPEG (segments only; the scan is token data)."""

    def seg(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    out = b"\xff\xd8" + seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    if exif:
        out += seg(0xE1, b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + b"Operator OP-117\x00")
    if comment:
        out += seg(0xFE, comment)
    out += seg(0xDB, b"\x00" + bytes(range(1, 65)))
    out += seg(0xC0, b"\x08\x00\x10\x00\x10\x01\x01\x11\x00")
    out += seg(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00")
    out += seg(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    out += b"\x12\x34\xff\x00\x56\xff\xd0\x78\x9a"  # entropy data with stuffing and RST0
    return out + b"\xff\xd9" + trailing


def zip_of(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of ``members``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_of(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    """A tar archive of ``members`` (and a symlink named ``symlink``, if given)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tf.addfile(info)
    return buf.getvalue()


def notebook(cells: list[dict[str, Any]]) -> bytes:
    """A v4 notebook; each cell is ``{"source": ..., "outputs": [...]}`` or markdown."""
    nb = nbformat.v4.new_notebook()
    for spec in cells:
        if spec.get("markdown"):
            nb.cells.append(nbformat.v4.new_markdown_cell(spec["markdown"]))
            continue
        cell = nbformat.v4.new_code_cell(spec["source"])
        cell.outputs = [nbformat.from_dict(o) for o in spec.get("outputs", [])]
        nb.cells.append(cell)
    return nbformat.writes(nb).encode("utf-8")


def html_output(html: str, text: str = "") -> dict[str, Any]:
    """An execute_result output showing ``html``."""
    return {
        "output_type": "execute_result",
        "execution_count": 1,
        "metadata": {},
        "data": {"text/html": html, "text/plain": text or "table"},
    }


def stream_output(text: str) -> dict[str, Any]:
    """A stdout stream output."""
    return {"output_type": "stream", "name": "stdout", "text": text}


def image_output(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    """A display_data output holding an image."""
    import base64

    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {mime: base64.b64encode(data).decode("ascii"), "text/plain": "<Figure>"},
    }


def safetensors(shapes: dict[str, list[int]], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file of float32 zeros with these shapes."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in shapes.items():
        size = 4
        for d in shape:
            size *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = metadata
    head = json.dumps(header).encode("utf-8")
    return struct.pack("<Q", len(head)) + head + b"\x00" * offset


def onnx(initializers: dict[str, list[int]], doc: str = "") -> bytes:
    """A minimal ONNX ModelProto with these initializer shapes (no nodes)."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def field(number: int, payload: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    graph = b""
    for name, dims in initializers.items():
        tensor = b"".join(varint(1 << 3) + varint(d) for d in dims)
        tensor += varint(2 << 3) + varint(1) + field(8, name.encode())
        graph += field(5, tensor)
    model = varint(1 << 3) + varint(8) + field(2, b"test")
    if doc:
        model += field(6, doc.encode())
    return model + field(7, graph)
