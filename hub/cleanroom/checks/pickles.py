"""Pickle checks by reading the opcode stream; nothing is ever unpickled.

Unpickling runs code chosen by whoever wrote the file, so the checker only walks the
opcodes (``pickletools.genops``) and lists the globals the stream would import. Only
the policy's allowlist passes; models known to keep training rows fail even when their
class is allowed.
"""

from __future__ import annotations

import fnmatch
import io
import pickletools
import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Global:
    name: str


@dataclass(frozen=True)
class _Dtype:
    code: str


@dataclass(frozen=True)
class _Shape:
    dims: tuple[int, ...]


_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}
_TUPLE_SIZES = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_WRAPPER_KEYS = ("shape", "dtype", "allow_mmap", "numpy_array_alignment_bytes")
_DTYPE_CODE = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)$")


class _Walker:
    """Walks the opcodes, following strings, ints, globals and joblib's array wrappers
    through the memo; never builds an object."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.found: list[str] = []
        self.payload = 0
        self.recent: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.key = ""  # the last dict key seen among joblib's wrapper keys
        self.shape_ints: list[int] | None = None
        self.code: str | None = None  # a numpy dtype code waiting for its REDUCE
        self.wrapper: dict[str, Any] | None = None  # the joblib array being described
        self.nested = 0  # object arrays are whole pickles (with a STOP) inside joblib's
        self.outer_memos: list[dict[int, Any]] = []
        self.strings: list[str] = []  # every text value, for the identifier checks
        self.string_chars = 0

    def push(self, value: Any) -> None:
        if isinstance(value, str) and self.string_chars < _MAX_STRING_CHARS:
            self.strings.append(value)
            self.string_chars += len(value)
        self.recent.append(value)
        if len(self.recent) > 64:
            self.recent = self.recent[-8:]
        if isinstance(value, str) and value in _WRAPPER_KEYS:
            self.key = value
            self.shape_ints = [] if value == "shape" else None
            if self.wrapper is not None and value in ("allow_mmap", "numpy_array_alignment_bytes"):
                # Keys written after the dtype: the next SETITEMS closes the wrapper's
                # state (a structured dtype's own field dict closes before them).
                self.wrapper["armed"] = True
        elif self.wrapper is not None:
            if isinstance(value, int) and self.shape_ints is not None:
                self.shape_ints.append(value)
            elif isinstance(value, int) and self.key == "numpy_array_alignment_bytes":
                self.wrapper["align"] = value
            elif isinstance(value, _Dtype) and self.key == "dtype":
                # The first dtype after the key is the array's; structured dtypes
                # describe their fields with more dtypes after it.
                self.wrapper["code"] = value.code
                self.key = ""
            elif isinstance(value, _Shape) and self.key == "shape":
                self.wrapper["shape"] = value.dims
                self.shape_ints = None
                self.key = ""

    def global_seen(self, name: str) -> None:
        self.found.append(name)
        self.push(_Global(name))
        self.wrapper_start(name)

    def wrapper_start(self, name: str) -> None:
        if name == _JOBLIB_WRAPPER:
            self.wrapper = {}
        elif name == "numpy.dtype":
            self.code = ""

    def run(self) -> str | None:
        """Walk the whole stream; the parse error, if any."""
        stream = io.BytesIO(self.data)
        while True:
            try:
                skip_to = self.walk(stream)
            except Exception as exc:  # genops raises ValueError and others on hostile bytes
                return f"{type(exc).__name__}: {exc}"
            if skip_to is None:
                rest = len(self.data) - stream.tell()
                return None if rest <= 0 else f"{rest} bytes follow the pickle's STOP opcode"
            if skip_to > len(self.data):
                return "a joblib array runs past the end of the file"
            if skip_to < stream.tell():
                # Only forward: a hostile shape must not send the walk round in circles.
                return "a joblib array has a negative size"
            stream.seek(skip_to)

    def walk(self, stream: io.BytesIO) -> int | None:
        """Walk until STOP (None) or until a joblib array's raw bytes (where they end)."""
        for op, arg, pos in pickletools.genops(stream):
            name = op.name
            if name in ("GLOBAL", "INST"):
                self.global_seen(str(arg).replace(" ", "."))
            elif name == "STACK_GLOBAL":
                module, attr = self.recent[-2:] if len(self.recent) >= 2 else (None, None)
                self.recent = self.recent[:-2]
                ok = isinstance(module, str) and isinstance(attr, str)
                self.global_seen(f"{module}.{attr}" if ok else "<unknown>")
            elif name in _STRING_OPS:
                if isinstance(arg, str) and self.code == "":
                    self.code = arg
                self.push(arg if isinstance(arg, str) else _UNKNOWN)
            elif name in _INT_OPS and isinstance(arg, int):
                self.push(arg)
            elif name == "MEMOIZE":
                self.memo[len(self.memo)] = self.recent[-1] if self.recent else _UNKNOWN
            elif name in _MEMO_PUT:
                self.memo[int(str(arg))] = self.recent[-1] if self.recent else _UNKNOWN
            elif name in _MEMO_GET:
                value = self.memo.get(int(str(arg)), _UNKNOWN)
                if isinstance(value, _Global):
                    self.wrapper_start(value.name)
                self.push(value)
            elif name == "REDUCE" and self.code:
                self.push(_Dtype(self.code))
                self.code = None
            elif (name in _TUPLE_SIZES or name == "TUPLE") and self.shape_ints is not None:
                size = _TUPLE_SIZES.get(name, len(self.shape_ints))
                self.push(_Shape(tuple(self.shape_ints[len(self.shape_ints) - size :])))
            elif name in ("SETITEMS", "SETITEM") and self.wrapper and self.wrapper.get("armed"):
                # The wrapper's state dict is complete; the dtype's own BUILD came before.
                self.wrapper["ready"] = {"shape", "code"} <= set(self.wrapper)
            elif name == "BUILD" and self.wrapper and self.wrapper.get("ready"):
                return self.array_end(int(pos or 0) + 1)
            elif op.stack_after:
                self.push(_UNKNOWN)
            if name in _BYTES_OPS and isinstance(arg, bytes | bytearray | str):
                self.payload += len(arg)
            if name == "STOP":
                if self.nested:
                    # The inline pickle of an object array ended: back to joblib's
                    # stream and its memo.
                    self.nested -= 1
                    self.memo = self.outer_memos.pop()
                    return stream.tell()
                return None
        return None

    def array_end(self, start: int) -> int:
        """Where to walk on after the described joblib array's raw bytes."""
        assert self.wrapper is not None
        wrapper, self.wrapper = self.wrapper, None
        match = _DTYPE_CODE.match(str(wrapper["code"]))
        if match is None:
            raise ValueError(f"joblib array of unknown dtype {wrapper['code']!r}")
        kind, digits = match.group(1), match.group(2)
        if kind == "O":
            # An object array: a whole pickle, with its own memo, follows.
            self.nested += 1
            self.outer_memos.append(self.memo)
            self.memo = {}
            return start
        itemsize = int(digits or 1) * (4 if kind == "U" else 1)
        count = 1
        for dim in wrapper["shape"]:
            if int(dim) < 0:
                raise ValueError(f"joblib array with a negative dimension {dim}")
            count *= int(dim)
        pos = start
        if wrapper.get("align") is not None:
            # One byte gives the padding length; the padding follows it.
            pos += 1 + (self.data[pos] if pos < len(self.data) else 0)
        self.payload += count * itemsize
        return pos + count * itemsize


#: Text values read from a pickle for the identifier checks (characters).
_MAX_STRING_CHARS = 2_000_000


def pickle_strings(data: bytes) -> list[str]:
    """The text values a pickle holds (class names, keys, labels an encoder learnt),
    read from the opcodes without building anything (at most 2 million characters)."""
    walker = _Walker(data)
    walker.run()
    return walker.strings


def pickle_globals(data: bytes) -> tuple[list[str], int, str | None]:
    """The globals a pickle imports, its embedded binary payload size, and a parse error.

    STACK_GLOBAL takes its module and name from the stack; we follow strings through
    the memo, and a global whose name cannot be followed is reported as ``<unknown>``.
    Files written by ``joblib.dump`` keep arrays as raw bytes between pickle opcodes;
    their size is read from the wrapper's shape and dtype and the bytes are stepped
    over. Bytes after the final STOP are an error: a loader that reads on would see
    what this walk did not.
    """
    walker = _Walker(data)
    error = walker.run()
    return walker.found, walker.payload, error


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def training_row_findings(
    names: list[str], context: CheckContext, location: str = ""
) -> list[Finding]:
    """A fail for each model class among ``names`` that keeps its training rows inside it
    (nearest neighbours and the like), whatever file format rebuilds it."""
    keeps_rows = [n for n in names if _matches(n, context.policy.pickles.training_row_models)]
    if not keeps_rows:
        return []
    return [
        Finding(
            "model.training_rows",
            Verdict.FAIL,
            "the model keeps training rows inside it: " + ", ".join(keeps_rows),
            {"models": keeps_rows},
            location,
        )
    ]


def check_pickle(data: bytes, context: CheckContext, location: str = "") -> list[Finding]:
    """Findings for a pickle: disallowed globals, models that keep rows, large data."""
    policy = context.policy.pickles
    imported, payload, error = pickle_globals(data)
    unique = list(dict.fromkeys(imported))
    findings: list[Finding] = []
    if error is not None:
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
    findings += training_row_findings(unique, context, location)
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
    findings += _string_findings(data, unique, context, location)
    if not any(f.verdict > Verdict.PASS for f in findings):
        findings += _structure(data, unique, payload, context, location)
    if not any(f.verdict > Verdict.PASS for f in findings):
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


def _string_findings(
    data: bytes, imported: list[str], context: CheckContext, location: str
) -> list[Finding]:
    """The pickle's text values through the identifier checks: an encoder fitted on a
    name column keeps the names, whatever else the pickle holds. The names of the
    globals it imports are left out (they are code, not data)."""
    from cleanroom.checks.text import check_text

    code = set(imported) | {part for g in imported for part in g.rsplit(".", 1)}
    values = [v for v in pickle_strings(data) if v not in code]
    if not values:
        return []
    return [
        f
        for f in check_text("\n".join(values), context, location=location or "pickle strings")
        if f.verdict > Verdict.PASS
    ]


def _structure(
    data: bytes, imported: list[str], payload: int, context: CheckContext, location: str
) -> list[Finding]:
    """Tree models' leaf sizes and tables of plain data (records, columns, arrays), read
    with stand-in classes (every global was allowed, so nothing runs)."""
    from cleanroom.checks.model_structure import (
        MAX_LOAD_BYTES,
        data_frames,
        load_stand_ins,
        tree_findings,
    )
    from cleanroom.checks.tables import check_frame

    trees = any(g.startswith(("sklearn.tree.", "sklearn.ensemble.")) for g in imported)
    if payload > MAX_LOAD_BYTES:
        return [
            Finding(
                "model.structure",
                Verdict.REVIEW,
                f"the model holds {payload} bytes of arrays; its trees were not read",
                {"bytes": payload, "threshold": MAX_LOAD_BYTES},
                location,
            )
        ]
    try:
        obj = load_stand_ins(data, _JOBLIB_WRAPPER in imported)
    except Exception as exc:  # a stream the stand-ins cannot rebuild: an officer looks
        if not trees:
            return []
        return [
            Finding(
                "model.structure",
                Verdict.REVIEW,
                f"the tree model's structure could not be read: {type(exc).__name__}: "
                f"{str(exc)[:200]}",
                {},
                location,
            )
        ]
    findings = tree_findings(obj, context, location) if trees else []
    for where, frame in data_frames(obj):
        place = f"{location} / {where}" if location else where
        findings += [
            f for f in check_frame(frame, context, location=place) if f.verdict > Verdict.PASS
        ]
    return findings
