"""Pickle checks by reading the opcode stream; nothing is ever unpickled.

Unpickling runs code chosen by whoever wrote the file, so the checker only walks the
opcodes (``pickletools.genops``) and lists the globals the stream would import. Only
the policy's allowlist passes; models known to keep training rows fail even when their
class is allowed.
"""

from __future__ import annotations

import fnmatch
import pickletools
from typing import Any

from cleanroom.checks.types import CheckContext, Finding, Verdict

_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
}
_BYTES_OPS = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "BINSTRING", "STRING"}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
#: Embedded binary payloads above this size are shown to an officer (arrays of data).
LARGE_PAYLOAD_BYTES = 1 << 20


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


_UNKNOWN = _Unknown()


def pickle_globals(data: bytes) -> tuple[list[str], int, str | None]:
    """The globals a pickle imports, its embedded binary payload size, and a parse error.

    STACK_GLOBAL takes its module and name from the stack; we follow strings through
    the memo, and a global whose name cannot be followed is reported as ``<unknown>``.
    """
    found: list[str] = []
    recent: list[Any] = []
    memo: dict[int, Any] = {}
    payload = 0
    try:
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
                recent.append(_UNKNOWN)
            elif name == "STACK_GLOBAL":
                module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
                if isinstance(module, str) and isinstance(attr, str):
                    found.append(f"{module}.{attr}")
                else:
                    found.append("<unknown>")
                recent = [*recent[:-2], _UNKNOWN]
            elif name in _STRING_OPS:
                recent.append(arg if isinstance(arg, str) else _UNKNOWN)
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else _UNKNOWN
            elif name in _MEMO_PUT:
                memo[int(str(arg))] = recent[-1] if recent else _UNKNOWN
            elif name in _MEMO_GET:
                recent.append(memo.get(int(str(arg)), _UNKNOWN))
            elif op.stack_after:
                recent.append(_UNKNOWN)
            if name in _BYTES_OPS and isinstance(arg, bytes | bytearray | str):
                payload += len(arg)
            if len(recent) > 64:
                recent = recent[-8:]
            if name == "STOP":
                break
    except Exception as exc:  # genops raises ValueError and others on hostile bytes
        return found, payload, f"{type(exc).__name__}: {exc}"
    return found, payload, None


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def check_pickle(data: bytes, context: CheckContext, location: str = "") -> list[Finding]:
    """Findings for a pickle: disallowed globals, models that keep rows, large data."""
    policy = context.policy.pickles
    imported, payload, error = pickle_globals(data)
    unique = list(dict.fromkeys(imported))
    findings: list[Finding] = []
    if error is not None and "joblib.numpy_pickle.NumpyArrayWrapper" in unique:
        findings.append(
            Finding(
                "pickle.joblib",
                Verdict.FAIL,
                "a joblib file: its arrays are written outside the pickle stream, so the rest "
                "of the file cannot be read without running joblib. Save the model with "
                "pickle.dump (or as safetensors/ONNX) to have it checked automatically",
                {"error": error, "globals_before_first_array": unique},
                location,
            )
        )
        unique = [g for g in unique if g != "joblib.numpy_pickle.NumpyArrayWrapper"]
    elif error is not None:
        findings.append(
            Finding(
                "pickle.malformed",
                Verdict.FAIL,
                f"the pickle stream cannot be read to its end ({error}); it cannot be checked",
                {"error": error, "globals_before_error": unique},
                location,
            )
        )
    denied = [g for g in unique if not _matches(g, policy.allowed_globals)]
    if denied:
        findings.append(
            Finding(
                "pickle.globals",
                Verdict.FAIL,
                "the pickle imports globals outside the allowlist: " + ", ".join(denied[:10]),
                {"denied": denied, "imported": unique},
                location,
            )
        )
    keeps_rows = [g for g in unique if _matches(g, policy.training_row_models)]
    if keeps_rows:
        findings.append(
            Finding(
                "model.training_rows",
                Verdict.FAIL,
                "the model keeps training rows inside it: " + ", ".join(keeps_rows),
                {"models": keeps_rows},
                location,
            )
        )
    if payload > LARGE_PAYLOAD_BYTES:
        findings.append(
            Finding(
                "pickle.large_payload",
                Verdict.REVIEW,
                f"the pickle holds {payload} bytes of binary data (arrays); an officer must "
                "confirm they are parameters, not records",
                {"bytes": payload, "threshold": LARGE_PAYLOAD_BYTES},
                location,
            )
        )
    if not findings:
        findings.append(
            Finding(
                "pickle.globals",
                Verdict.PASS,
                "the pickle imports only allowed globals",
                {"imported": unique},
                location,
            )
        )
    return findings
