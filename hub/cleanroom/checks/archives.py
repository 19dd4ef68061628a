"""Archive checks: list the members, check each, refuse bombs and deep nesting.

Sizes are bounded before anything is expanded: declared sizes for zip members (Python's
zipfile never reads past them), and a byte budget for gzip, bzip2 and xz streams, which
we decompress a chunk at a time and stop the moment the budget is spent.
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import PurePosixPath

from cleanroom.checks.types import CheckContext, CheckReport, Finding, Verdict

#: Checks one member: (bytes, member name, archive depth of the member) -> report.
MemberChecker = Callable[[bytes, str, int], CheckReport]
_CHUNK = 1 << 20


class BudgetExceeded(ValueError):
    """A stream expands beyond the policy's budget (a zip bomb or an oversized output)."""


def budget_for(compressed: int, context: CheckContext) -> int:
    """Bytes a compressed input of this size may expand to under the policy."""
    limits = context.policy.archives
    by_ratio = int(limits.max_expansion_ratio * max(compressed, 1))
    # Small archives have fixed overheads that make honest ratios look large.
    return min(limits.max_uncompressed_bytes, max(by_ratio, 1 << 20))


def decompress_stream(data: bytes, kind: str, budget: int) -> bytes:
    """Expand a gzip, bzip2 or xz stream, raising :class:`BudgetExceeded` past ``budget``.

    Concatenated streams (``cat a.gz b.gz``) are expanded one after the other.
    """
    out = bytearray()
    rest = data
    while rest:
        if kind in ("gzip", "zlib"):
            zdec = zlib.decompressobj(wbits=47 if kind == "gzip" else 15)
            buf = rest
            while not zdec.eof:
                piece = zdec.decompress(buf, _CHUNK)
                buf = zdec.unconsumed_tail
                out += piece
                if len(out) > budget:
                    raise BudgetExceeded(f"expands beyond {budget} bytes")
                if not piece and not buf and not zdec.eof:
                    raise ValueError("the compressed stream is truncated")
            # gzip files may be padded with zeros after the last member.
            rest = zdec.unused_data.lstrip(b"\x00")
            if kind == "zlib" and rest:
                raise ValueError(f"{len(rest)} bytes follow the zlib stream")
            continue
        dec = bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
        buf = rest
        while not dec.eof:
            piece = dec.decompress(buf, max_length=_CHUNK)
            buf = b""
            out += piece
            if len(out) > budget:
                raise BudgetExceeded(f"expands beyond {budget} bytes")
            if dec.needs_input and not dec.eof:
                raise ValueError("the compressed stream is truncated")
        rest = dec.unused_data
    return bytes(out)


def _bad_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or ":" in name.split("/")[0]


def check_zip_budget(data: bytes, context: CheckContext, location: str = "") -> list[Finding]:
    """Bomb checks on a zip container (also used before Excel files are opened)."""
    limits = context.policy.archives
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        return [
            _finding("archive.malformed", Verdict.FAIL, f"not a readable zip: {exc}", {}, location)
        ]
    findings = []
    if len(infos) > limits.max_members:
        findings.append(
            _finding(
                "archive.members",
                Verdict.FAIL,
                f"{len(infos)} members, more than the policy's {limits.max_members}",
                {"members": len(infos), "threshold": limits.max_members},
                location,
            )
        )
    declared = sum(i.file_size for i in infos)
    budget = budget_for(len(data), context)
    if declared > budget:
        findings.append(
            _finding(
                "archive.expansion",
                Verdict.FAIL,
                f"expands to {declared} bytes from {len(data)} (ratio "
                f"{declared / max(len(data), 1):.0f}); the policy allows "
                f"{limits.max_expansion_ratio:g}x and {limits.max_uncompressed_bytes} bytes",
                {
                    "compressed": len(data),
                    "uncompressed": declared,
                    "threshold": limits.max_expansion_ratio,
                },
                location,
            )
        )
    return findings


def check_archive(
    data: bytes,
    kind: str,
    context: CheckContext,
    depth: int,
    check_member: MemberChecker,
    location: str = "",
) -> list[Finding]:
    """Findings for a zip or tar archive at ``depth`` (0 for a submitted file)."""
    limits = context.policy.archives
    if depth >= limits.max_depth:
        return [
            _finding(
                "archive.nesting",
                Verdict.FAIL,
                f"an archive inside an archive: {depth + 1} levels of archives, more than "
                f"the policy's {limits.max_depth} (archive members may not be archives)",
                {"depth": depth + 1, "threshold": limits.max_depth},
                location,
            )
        ]
    try:
        members = _zip_members(data, context) if kind == "zip" else _tar_members(data, context)
    except BudgetExceeded as exc:
        return [_finding("archive.expansion", Verdict.FAIL, f"the archive {exc}", {}, location)]
    except _Refused as exc:
        return exc.findings
    except (
        zipfile.BadZipFile,
        tarfile.TarError,
        OSError,
        ValueError,
        EOFError,
        zlib.error,
        lzma.LZMAError,
        NotImplementedError,  # zip compression methods Python lacks
    ) as exc:
        return [
            _finding(
                "archive.malformed", Verdict.FAIL, f"cannot read the archive: {exc}", {}, location
            )
        ]
    findings: list[Finding] = []
    names = []
    for name, content in members:
        names.append(name)
        report = check_member(content, name, depth + 1)
        findings += [
            f.within(f"{location} / {name}" if location else name) for f in report.findings
        ]
    findings.append(
        _finding(
            "archive.listing",
            Verdict.PASS,
            f"{kind} archive with {len(names)} members, each checked",
            {"members": names[: context.policy.tables.max_evidence_items], "count": len(names)},
            location,
        )
    )
    return findings


class _Refused(Exception):
    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("refused")
        self.findings = findings


def _zip_members(data: bytes, context: CheckContext) -> list[tuple[str, bytes]]:
    refused = check_zip_budget(data, context)
    if refused:
        raise _Refused(refused)
    out = []
    bad: list[Finding] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                bad.append(
                    _finding(
                        "archive.encrypted",
                        Verdict.FAIL,
                        f"member {info.filename!r} is encrypted and cannot be checked",
                        {"member": info.filename},
                    )
                )
                continue
            if _bad_name(info.filename):
                bad.append(
                    _finding(
                        "archive.path",
                        Verdict.FAIL,
                        f"member name {info.filename!r} points outside the archive",
                        {"member": info.filename},
                    )
                )
                continue
            out.append((info.filename, zf.read(info)))
    if bad:
        raise _Refused(bad)
    return out


def _tar_members(data: bytes, context: CheckContext) -> list[tuple[str, bytes]]:
    limits = context.policy.archives
    budget = budget_for(len(data), context)
    out: list[tuple[str, bytes]] = []
    bad: list[Finding] = []
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for count, member in enumerate(tf, start=1):
            if count > limits.max_members:
                raise _Refused(
                    [
                        _finding(
                            "archive.members",
                            Verdict.FAIL,
                            f"more than {limits.max_members} members",
                            {"threshold": limits.max_members},
                        )
                    ]
                )
            if member.isdir():
                continue
            if not member.isfile():
                bad.append(
                    _finding(
                        "archive.special_member",
                        Verdict.FAIL,
                        f"member {member.name!r} is a link or device, which cannot be checked",
                        {"member": member.name},
                    )
                )
                continue
            if _bad_name(member.name):
                bad.append(
                    _finding(
                        "archive.path",
                        Verdict.FAIL,
                        f"member name {member.name!r} points outside the archive",
                        {"member": member.name},
                    )
                )
                continue
            total += member.size
            if total > max(budget, len(data)):
                raise BudgetExceeded(f"expands beyond {budget} bytes")
            fh = tf.extractfile(member)
            out.append((member.name, fh.read() if fh else b""))
    if bad:
        raise _Refused(bad)
    return out


def _finding(
    rule: str, verdict: Verdict, message: str, evidence: dict, location: str = ""
) -> Finding:
    return Finding(rule, verdict, message, evidence, location)
