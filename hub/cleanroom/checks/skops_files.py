"""scikit-learn models saved with skops (``skops.io.dump``), read without skops.

A skops file is a zip of ``schema.json`` (the object tree: each node names its class
and how to rebuild it) and one ``.npy`` per array. We rebuild the tree with the inert
stand-ins of :mod:`cleanroom.checks.model_structure` (arrays with
``allow_pickle=False``, so nothing in the file runs) and apply the same rules as to a
pickled model: the allowlist of classes, models that keep training rows, tree leaf
sizes and forests without bootstrapping; plus the text values it keeps (an encoder's
categories) through the identifier checks and its 2-D arrays through the
memorisation check.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from cleanroom.checks.model_structure import Stub, _stub, tree_findings, unreadable_model
from cleanroom.checks.models import tensor_row_findings
from cleanroom.checks.pickles import _matches, training_row_findings
from cleanroom.checks.text import check_text
from cleanroom.checks.types import CheckContext, Finding, Verdict

_MAX_NODES = 1_000_000
_MAX_DEPTH = 200
# Classes that only describe data: skops rebuilds them without running class code.
_DATA_MODULES = ("builtins.", "numpy.", "collections.")


class _Reader:
    def __init__(self, members: dict[str, bytes]) -> None:
        self.members = members
        self.classes: list[str] = []
        self.strings: list[str] = []
        self.arrays: list[tuple[str, np.ndarray]] = []
        self.cache: dict[Any, Any] = {}
        self.nodes = 0

    def build(self, node: Any, where: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise ValueError("the skops schema is too large or too deep to read")
        if not isinstance(node, dict):
            return node
        loader = node.get("__loader__", "")
        name = f"{node.get('__module__', '')}.{node.get('__class__', '')}"
        content = node.get("content")
        if loader == "CachedNode":
            return self.cache.get(node.get("content", node.get("__id__")))
        if loader == "JsonNode":
            value = json.loads(str(content)) if node.get("is_json", True) else content
            if isinstance(value, str):
                self.strings.append(value)
            out: Any = value
        elif loader == "DictNode":
            out = {
                str(k): self.build(v, f"{where}.{k}", depth + 1)
                for k, v in dict(content or {}).items()
            }
            self.strings += [str(k) for k in (content or {})]
        elif loader in ("ListNode", "TupleNode", "SetNode"):
            out = [self.build(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(content or [])]
        elif loader == "NdArrayNode":
            out = self.array(node, where)
        else:
            # ObjectNode, TreeNode, ReduceNode, TypeNode, FunctionNode, ...: a class
            # whose code would run on load; an inert stand-in keeps its state.
            self.classes.append(name)
            stub: Stub = _stub(name)()
            if isinstance(content, dict) and "__loader__" in content:
                stub.__setstate__(self.build(content, where, depth + 1))
            elif isinstance(content, dict):
                stub.__setstate__(
                    {str(k): self.build(v, f"{where}.{k}", depth + 1) for k, v in content.items()}
                )
            out = stub
        if "__id__" in node:
            self.cache.setdefault(node["__id__"], out)
        return out

    def array(self, node: dict[str, Any], where: str) -> Any:
        if node.get("type") == "numpy":
            raw = self.members.get(str(node.get("file")))
            if raw is None:
                raise ValueError(f"the array file {node.get('file')!r} is missing")
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        else:
            array = np.asarray(node.get("content"))
        if array.dtype.kind == "U":
            self.strings += [str(v) for v in array.ravel()[:100_000]]
        elif array.dtype.names is None and array.ndim == 2 and array.dtype.kind in "fiu":
            self.arrays.append((where, array))
        return array


def check_skops(data: bytes, context: CheckContext, location: str = "") -> list[Finding]:
    """Findings for a skops file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        schema = json.loads(members["schema.json"])
        reader = _Reader(members)
        obj = reader.build(schema, "model", 0)
    except (ValueError, KeyError, TypeError, zipfile.BadZipFile, OSError) as exc:
        return unreadable_model("the skops file", "skops", exc, location)
    policy = context.policy.pickles
    classes = list(dict.fromkeys(reader.classes))
    findings: list[Finding] = []
    untrusted = [
        c
        for c in classes
        if not c.startswith(_DATA_MODULES) and not _matches(c, policy.allowed_globals)
    ]
    if untrusted:
        # skops itself refuses to load these unless the loader trusts them by name.
        findings.append(
            Finding(
                "skops.types",
                Verdict.REVIEW,
                "the skops file rebuilds classes outside the allowlist: "
                + ", ".join(untrusted[:10]),
                {"untrusted": untrusted, "classes": classes},
                location,
            )
        )
    findings += training_row_findings(classes, context, location)
    findings += tree_findings(obj, context, location)
    findings += tensor_row_findings(reader.arrays, context, location)
    if reader.strings:
        findings += [
            f
            for f in check_text("\n".join(reader.strings), context, location=location)
            if f.verdict > Verdict.PASS
        ]
    if not any(f.verdict > Verdict.PASS for f in findings):
        findings.append(
            Finding(
                "skops.types",
                Verdict.PASS,
                f"the skops file rebuilds only allowed classes ({len(classes)})",
                {"classes": classes},
                location,
            )
        )
    return findings
