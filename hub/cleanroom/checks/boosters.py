"""Gradient-boosted tree models saved in their own formats: XGBoost JSON and UBJSON
(``save_model("m.json" / "m.ubj")``) and LightGBM text (``save_model("m.txt")``).

Both formats keep, per leaf, how much training data reached it: LightGBM writes the
record count (``leaf_count``); XGBoost the sum of the records' hessians
(``sum_hessian``), which is the record count for the objectives whose hessian is 1
(squared, absolute and quantile error) and bounds it from below for the others
(a logistic record's hessian is at most 0.25, a softmax one's at most 0.5). The
files are parsed as data, never loaded by the libraries, so nothing in them runs.

Rules: SACRO-ML's minimum leaf size (``models.min_samples_leaf``), as for the
pickled scikit-learn trees; the feature names and category values these formats
store go through the identifier checks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from cleanroom.checks.model_structure import leaf_size_findings, unreadable_model
from cleanroom.checks.text import check_text
from cleanroom.checks.types import CheckContext, Finding, Verdict

# The most hessian one record (of weight 1) can add to a leaf, per objective. 1.0:
# the sum of hessians is the record count.
_MAX_HESSIAN = {
    "reg:squarederror": 1.0,
    "reg:linear": 1.0,
    "reg:absoluteerror": 1.0,
    "reg:quantileerror": 1.0,
    "binary:logistic": 0.25,
    "binary:logitraw": 0.25,
    "reg:logistic": 0.25,
    "multi:softprob": 0.5,
    "multi:softmax": 0.5,
}

# UBJSON's numeric types (big-endian), as XGBoost writes them.
_UBJ_NUMBERS: dict[bytes, np.dtype[Any]] = {
    b"i": np.dtype(">i1"),
    b"U": np.dtype(">u1"),
    b"I": np.dtype(">i2"),
    b"l": np.dtype(">i4"),
    b"L": np.dtype(">i8"),
    b"d": np.dtype(">f4"),
    b"D": np.dtype(">f8"),
}
_MAX_UBJ_DEPTH = 64
_MAX_UBJ_ITEMS = 20_000_000


class _Ubj:
    """A bounded UBJSON reader (Draft 12, with optimised containers): numeric arrays
    become numpy arrays without a Python object per number. Written here because no
    kept pure-Python decoder exists and the input is hostile: every length is checked
    against the bytes that remain before anything is allocated."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.items = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"UBJSON runs past the end at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def marker(self) -> bytes:
        m = self.take(1)
        while m == b"N":  # no-op
            m = self.take(1)
        return m

    def number(self, m: bytes) -> int | float:
        dtype = _UBJ_NUMBERS[m]
        value: int | float = np.frombuffer(self.take(dtype.itemsize), dtype)[0].item()
        return value

    def length(self) -> int:
        m = self.marker()
        if m not in _UBJ_NUMBERS or m in (b"d", b"D"):
            raise ValueError(f"UBJSON length of type {m!r} at byte {self.pos}")
        n = int(self.number(m))
        if n < 0:
            raise ValueError(f"negative UBJSON length at byte {self.pos}")
        return n

    def string(self) -> str:
        return self.take(self.length()).decode("utf-8", errors="replace")

    def value(self, m: bytes, depth: int) -> Any:
        self.items += 1
        if self.items > _MAX_UBJ_ITEMS or depth > _MAX_UBJ_DEPTH:
            raise ValueError("the UBJSON document is too large or too deep to read")
        if m in _UBJ_NUMBERS:
            return self.number(m)
        if m == b"Z":
            return None
        if m in (b"T", b"F"):
            return m == b"T"
        if m == b"C":
            return self.take(1).decode("latin-1")
        if m in (b"S", b"H"):
            return self.string()
        if m == b"[":
            return self.container(b"]", depth, keyed=False)
        if m == b"{":
            return self.container(b"}", depth, keyed=True)
        raise ValueError(f"unknown UBJSON marker {m!r} at byte {self.pos - 1}")

    def container(self, close: bytes, depth: int, keyed: bool) -> Any:
        typ: bytes | None = None
        count: int | None = None
        if self.data[self.pos : self.pos + 1] == b"$":
            self.pos += 1
            typ = self.take(1)
        if self.data[self.pos : self.pos + 1] == b"#":
            self.pos += 1
            count = self.length()
        if typ is not None and count is None:
            raise ValueError("a typed UBJSON container without a count")
        if count is not None and not keyed and typ in _UBJ_NUMBERS:
            dtype = _UBJ_NUMBERS[typ]
            raw = self.take(count * dtype.itemsize)
            self.items += count
            return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
        if count is not None and count > len(self.data) - self.pos + _MAX_UBJ_ITEMS // 100:
            raise ValueError("a UBJSON count larger than the file")
        out: Any = {} if keyed else []
        n = 0
        while True:
            if count is not None:
                if n >= count:
                    return out
            elif self.data[self.pos : self.pos + 1] == close:
                self.pos += 1
                return out
            key = self.string() if keyed else None
            item = self.value(typ if typ is not None else self.marker(), depth + 1)
            if keyed:
                out[key] = item
            else:
                out.append(item)
            n += 1


def ubjson_loads(data: bytes) -> Any:
    """The document in UBJSON bytes (raises ``ValueError`` when they are not)."""
    reader = _Ubj(data)
    return reader.value(reader.marker(), 0)


def is_xgboost_ubj(head: bytes) -> bool:
    """Whether the bytes start like an XGBoost model saved as UBJSON."""
    return head[:1] == b"{" and head[1:2] in b"iUIlL" and b"learner" in head[:32]


def is_xgboost_json(head: bytes) -> bool:
    """Whether the bytes start like an XGBoost model saved as JSON."""
    start = head[:400].lstrip()
    return (
        start.startswith(b"{")
        and re.match(rb'\{\s*"(learner|version)"', start) is not None
        and (b'"learner"' in head[:400] and b"gradient_booster" in head[:65_536])
    )


def is_lightgbm_json(head: bytes) -> bool:
    """Whether the bytes start like a LightGBM model dumped as JSON (``dump_model``)."""
    return (
        re.match(rb'\s*\{\s*"name"\s*:\s*"tree"\s*,\s*"version"\s*:\s*"v\d', head[:200]) is not None
    )


def is_lightgbm(head: bytes) -> bool:
    """Whether the bytes start like a LightGBM text model."""
    return re.match(rb"\s*tree\r?\nversion=v\d", head[:64]) is not None


def _trees(node: Any, depth: int = 0) -> list[Any]:
    # The trees sit at learner.gradient_booster.model.trees (gbtree) or one level
    # deeper (dart: gradient_booster.gbtree.model.trees).
    if depth > 6 or not isinstance(node, dict):
        return []
    if isinstance(node.get("trees"), list):
        return list(node["trees"])
    for value in node.values():
        found = _trees(value, depth + 1)
        if found:
            return found
    return []


def check_xgboost(
    data: bytes, binary: bool, context: CheckContext, location: str = ""
) -> list[Finding]:
    """Findings for an XGBoost model file (JSON or UBJSON)."""
    fmt = "UBJSON" if binary else "JSON"
    try:
        doc = ubjson_loads(data) if binary else json.loads(data)
        learner = doc["learner"]
        objective = str((learner.get("objective") or {}).get("name", ""))
        trees = _trees(learner.get("gradient_booster"))
        sizes = []
        for tree in trees:
            left = np.asarray(tree["left_children"], dtype=np.int64)
            hessian = np.asarray(tree["sum_hessian"], dtype=np.float64)
            if len(left) != len(hessian):
                raise ValueError("a tree's node arrays differ in length")
            sizes.append(hessian[left == -1])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return unreadable_model(f"the XGBoost {fmt} model", f"xgboost {fmt}", exc, location)
    findings = _names_findings(
        [str(n) for n in learner.get("feature_names") or []]
        + [json.dumps(learner.get("attributes") or {}, default=str)],
        context,
        location,
    )
    per_record = _MAX_HESSIAN.get(objective)
    if per_record is None:
        # An objective whose hessian has no bound (Poisson, gamma, Tweedie, ranking):
        # the sums say nothing about record counts; only their number can.
        findings += leaf_size_findings(
            [],
            context,
            location,
            model=f"XGBoost ({objective})",
            leaves_per_tree=[len(s) for s in sizes],
        )
        return findings
    counts = [s / per_record for s in sizes]
    findings += leaf_size_findings(
        [np.floor(c + 1e-6) for c in counts],
        context,
        location,
        model=f"XGBoost ({objective})",
        lower_bound=per_record < 1.0,
        basis=(
            "sum_hessian (one per record)"
            if per_record == 1.0
            else f"sum_hessian / {per_record} (a lower bound on the records)"
        ),
    )
    return findings


def check_lightgbm(data: bytes, context: CheckContext, location: str = "") -> list[Finding]:
    """Findings for a LightGBM text model."""
    text = data.decode("utf-8", errors="replace")
    sizes: list[np.ndarray] = []
    leaves_per_tree: list[int] = []
    for block in re.split(r"\n(?=Tree=\d+\r?\n)", text):
        if not block.startswith("Tree="):
            continue
        fields = dict(re.findall(r"^(\w+)=(.*)$", block[:50_000_000], flags=re.MULTILINE))
        try:
            leaves = int(fields.get("num_leaves", "1"))
            counts = fields.get("leaf_count")
            leaves_per_tree.append(leaves)
            if counts is not None:
                sizes.append(np.asarray([float(c) for c in counts.split()], dtype=np.float64))
            elif leaves > 1:
                raise ValueError("a tree without leaf counts")
        except ValueError as exc:
            return [
                Finding(
                    "model.malformed",
                    Verdict.FAIL,
                    f"the LightGBM model cannot be read: {str(exc)[:200]}",
                    {"format": "lightgbm"},
                    location,
                )
            ]
    names = re.search(r"^feature_names=(.*)$", text[:5_000_000], flags=re.MULTILINE)
    categorical = re.search(r"^pandas_categorical:(.*)$", text[-5_000_000:], flags=re.MULTILINE)
    findings = _names_findings(
        [names.group(1) if names else "", categorical.group(1) if categorical else ""],
        context,
        location,
    )
    params = re.search(r"^\[min_data_in_leaf: (\d+)\]$", text[-2_000_000:], flags=re.MULTILINE)
    findings += leaf_size_findings(
        sizes,
        context,
        location,
        model="LightGBM",
        basis="leaf_count",
        parameters={"min_data_in_leaf": int(params.group(1))} if params else None,
        leaves_per_tree=leaves_per_tree,
    )
    return findings


def check_lightgbm_json(data: bytes, context: CheckContext, location: str = "") -> list[Finding]:
    """Findings for a LightGBM model dumped as JSON (``booster.dump_model()``): each
    leaf of ``tree_structure`` carries its ``leaf_count``."""
    try:
        doc = json.loads(data)
        sizes: list[np.ndarray] = []
        per_tree: list[int] = []
        for tree in doc["tree_info"]:
            counts: list[float] = []
            stack = [tree["tree_structure"]]
            while stack:  # no recursion: a chain of 1,000 splits is a valid tree
                node = stack.pop()
                if "leaf_count" in node or "leaf_value" in node:
                    counts.append(float(node.get("leaf_count", np.nan)))
                else:
                    stack += [node["left_child"], node["right_child"]]
                if len(counts) + len(stack) > 10_000_000:
                    raise ValueError("a tree too large to read")
            per_tree.append(len(counts))
            if len(counts) > 1 or not all(np.isnan(counts)):
                if any(np.isnan(counts)):
                    raise ValueError("a leaf without its count")
                sizes.append(np.asarray(counts))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return unreadable_model("the LightGBM JSON model", "lightgbm json", exc, location)
    findings = _names_findings(
        [
            " ".join(map(str, doc.get("feature_names") or [])),
            json.dumps(doc.get("pandas_categorical")),
        ],
        context,
        location,
    )
    findings += leaf_size_findings(
        sizes, context, location, model="LightGBM", basis="leaf_count", leaves_per_tree=per_tree
    )
    return findings


def _names_findings(texts: list[str], context: CheckContext, location: str) -> list[Finding]:
    # Feature names and category values are the only free text these formats keep;
    # the numbers (thresholds, leaf values) are not read as prose.
    text = "\n".join(t for t in texts if t)
    if not text:
        return []
    return [f for f in check_text(text, context, location=location) if f.verdict > Verdict.PASS]
