"""The structure of tree models in pickles, read without running the pickle's code.

A fully grown decision tree keeps one leaf per training record, and a leaf's
prediction is that record's label: releasing the tree releases the records. The
opcode walk (:mod:`cleanroom.checks.pickles`) has already proved that the pickle
imports only allowlisted globals; here it is loaded by an unpickler whose
``find_class`` returns inert stand-ins for every class (they only keep the state they
are given) and real objects only for numpy's array and dtype constructors, so no
estimator code runs. The trees' node arrays then give every leaf's training-record
count.

Rules (SACRO-ML's defaults for its "safe" tree models, ``sacroml.safemodel``): every
leaf holds at least ``min_samples_leaf`` (5) records; random forests are trained with
bootstrapping.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from cleanroom.checks.types import CheckContext, Finding, Verdict

# Constructors that rebuild arrays, dtypes and builtin containers: the only real
# callables the stand-in unpickler hands out.
_REAL = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("_codecs", "encode"),
}
_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
#: Arrays bigger than this (bytes, from the opcode walk) are not loaded.
MAX_LOAD_BYTES = 256 * 1024 * 1024
_TREE_CLASS = "sklearn.tree._tree.Tree"
_FORESTS = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
)


class Stub:
    """An inert stand-in for a pickled class: it keeps its arguments and state."""

    cr_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Stub:
        obj = object.__new__(cls)
        obj.__dict__["cr_args"] = args
        obj.__dict__["cr_state"] = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["cr_args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["cr_state"] = state

    @property
    def state(self) -> dict[str, Any]:
        """The pickled state as a dict (empty if it was something else)."""
        state = self.__dict__.get("cr_state")
        if isinstance(state, tuple) and state and isinstance(state[0], dict):
            state = state[0]
        return state if isinstance(state, dict) else {}


_STUBS: dict[str, type[Stub]] = {}


def _stub(name: str) -> type[Stub]:
    if name not in _STUBS:
        _STUBS[name] = type(name.rsplit(".", 1)[-1], (Stub,), {"cr_name": name})
    return _STUBS[name]


def _find_class(module: str, name: str) -> Any:
    if (module, name) in _REAL:
        return getattr(__import__(module, fromlist=[name]), name)
    if (module, name) == _JOBLIB_WRAPPER:
        from joblib.numpy_pickle import NumpyArrayWrapper

        return NumpyArrayWrapper
    return _stub(f"{module}.{name}")


class _StandInUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _find_class(module, name)


def load_stand_ins(data: bytes, joblib_arrays: bool) -> Any:
    """The pickled object with stand-ins for its classes (only after the opcode walk
    allowed every global). ``joblib_arrays``: the file was written by ``joblib.dump``."""
    if joblib_arrays:
        from joblib.numpy_pickle import NumpyUnpickler

        class _JoblibStandIns(NumpyUnpickler):
            def find_class(self, module: str, name: str) -> Any:
                return _find_class(module, name)

        handle = io.BytesIO(data)
        return _JoblibStandIns("<submitted>", handle, ensure_native_byte_order=True).load()
    return _StandInUnpickler(io.BytesIO(data)).load()


def _walk(obj: Any, seen: set[int], out: list[Stub], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Stub):
        out.append(obj)
        _walk(obj.state, seen, out, budget)
        _walk(list(obj.__dict__.get("cr_args") or ()), seen, out, budget)
    elif isinstance(obj, dict):
        for value in obj.values():
            _walk(value, seen, out, budget)
    elif isinstance(obj, list | tuple | set | frozenset):
        for value in obj:
            _walk(value, seen, out, budget)
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        for value in obj.ravel()[:100_000]:
            _walk(value, seen, out, budget)


def _leaf_sizes(tree: Stub) -> np.ndarray | None:
    nodes = tree.state.get("nodes")
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None:
        return None
    if not {"left_child", "n_node_samples"} <= set(nodes.dtype.names):
        return None
    leaves = nodes["left_child"] == -1
    return np.asarray(nodes["n_node_samples"][leaves], dtype=np.int64)


def tree_findings(obj: Any, context: CheckContext, location: str = "") -> list[Finding]:
    """Leaf sizes and bootstrapping of the tree models inside ``obj``."""
    policy = context.policy.models
    found: list[Stub] = []
    _walk(obj, set(), found, [2_000_000])
    trees = [s for s in found if s.cr_name == _TREE_CLASS]
    estimators = [s for s in found if s.cr_name.startswith("sklearn.") and "tree_" in s.state]
    forests = [s for s in found if s.cr_name.rsplit(".", 1)[-1] in _FORESTS]
    if not trees and not forests:
        return []
    findings: list[Finding] = []
    threshold = policy.min_samples_leaf
    sizes = [s for s in (_leaf_sizes(t) for t in trees) if s is not None]
    if len(sizes) < len(trees):
        findings.append(
            Finding(
                "model.structure",
                Verdict.REVIEW,
                f"{len(trees) - len(sizes)} of {len(trees)} trees have no readable node array",
                {"trees": len(trees)},
                location,
            )
        )
    if sizes:
        leaves = np.concatenate(sizes)
        small = int((leaves < threshold).sum())
        params = sorted(
            {
                int(v)
                for s in [*estimators, *forests]
                if isinstance(v := s.state.get("min_samples_leaf"), int | np.integer)
            }
        )
        evidence = {
            "trees": len(sizes),
            "leaves": len(leaves),
            "smallest_leaf": int(leaves.min()) if len(leaves) else 0,
            "leaves_below_threshold": small,
            "threshold": threshold,
            "min_samples_leaf_parameter": params,
            "source": "SACRO-ML safemodel rules (min_samples_leaf >= 5)",
        }
        if small:
            findings.append(
                Finding(
                    "model.leaf_size",
                    Verdict.FAIL,
                    f"{small} of {len(leaves)} leaves in {len(sizes)} trees hold fewer than "
                    f"{threshold} training records (smallest: {int(leaves.min())}): a small "
                    "leaf predicts its records' own values",
                    evidence,
                    location,
                )
            )
        else:
            findings.append(
                Finding(
                    "model.leaf_size",
                    Verdict.PASS,
                    f"every leaf of {len(sizes)} trees holds at least {threshold} training "
                    f"records (smallest: {int(leaves.min())})",
                    evidence,
                    location,
                )
            )
    no_bootstrap = [s.cr_name for s in forests if s.state.get("bootstrap") is False]
    if no_bootstrap:
        findings.append(
            Finding(
                "model.forest_bootstrap",
                policy.forest_without_bootstrap_verdict,
                "a random forest trained without bootstrapping: each tree sees every "
                "record (SACRO-ML requires bootstrap=True)",
                {"models": no_bootstrap},
                location,
            )
        )
    return findings


def data_frames(obj: Any, limit: int = 20) -> list[tuple[str, Any]]:
    """Tables of plain data inside an unpickled object: lists of records, dicts of
    columns, 2-D numeric arrays (``pickle.dump(rows)`` is as much a table as a CSV).
    The state of stand-in classes (a model's own arrays) is not searched: models are
    judged by their structure."""
    import pandas as pd

    from cleanroom.checks.runner import json_tables
    from cleanroom.checks.tables import array_frame

    found: list[tuple[str, pd.DataFrame]] = []

    def visit(value: Any, where: str, depth: int) -> None:
        if len(found) >= limit or depth > 6 or isinstance(value, Stub):
            return
        if isinstance(value, np.ndarray):
            if value.dtype != object and value.ndim == 2 and value.shape[0] >= 2:
                found.append((where, array_frame(value)))
            return
        if isinstance(value, list | dict) and value:
            plain = _plain(value, 0)
            if plain is not None:
                tables = json_tables_of(plain)
                if tables:
                    found.extend((f"{where} {w}".strip(), f) for w, f in tables)
                    return
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in list(items)[:200]:
                visit(item, f"{where} / {str(key)[:40]}", depth + 1)
        elif isinstance(value, tuple):
            for i, item in enumerate(value[:200]):
                visit(item, f"{where} / {i}", depth + 1)

    def json_tables_of(plain: Any) -> list[tuple[str, pd.DataFrame]]:
        import json

        try:
            text = json.dumps(plain, default=str).encode()
        except (TypeError, ValueError):
            return []
        return [(w.replace("JSON table", "").strip(" /"), f) for w, f in json_tables(text, "json")]

    visit(obj, "pickled data", 0)
    return found


def _plain(value: Any, depth: int) -> Any:
    """``value`` as JSON-ready data (numpy scalars as numbers), or None if it holds
    anything else."""
    if depth > 8:
        return None
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        out = [_plain(v, depth + 1) for v in value[:100_000]]
        return (
            None
            if any(o is None and v is not None for o, v in zip(out, value, strict=False))
            else out
        )
    if isinstance(value, dict):
        items = {str(k): _plain(v, depth + 1) for k, v in list(value.items())[:100_000]}
        return (
            None
            if any(items[str(k)] is None and v is not None for k, v in value.items())
            else items
        )
    return None


def leaf_size_findings(
    sizes: list[np.ndarray],
    context: CheckContext,
    location: str,
    *,
    model: str,
    lower_bound: bool = False,
    basis: str = "n_node_samples",
    parameters: dict[str, Any] | None = None,
    leaves_per_tree: list[int] | None = None,
) -> list[Finding]:
    """SACRO-ML's leaf-size rule on the training-record counts of every leaf (one
    array per tree), for any tree format.

    ``lower_bound``: the counts are lower bounds (XGBoost's hessian sums under a
    logistic loss), so a small one sends the model to review, not to fail.
    ``leaves_per_tree`` without ``sizes``: a format that keeps no counts (ONNX); then
    only the pigeonhole rule can decide: a tree with more leaves than the source's
    records divided by the minimum must have a smaller leaf.
    """
    threshold = context.policy.models.min_samples_leaf
    per_tree = leaves_per_tree if leaves_per_tree is not None else [len(s) for s in sizes]
    if not per_tree:
        return []
    most = max(per_tree)
    rows = sum(s.rows for s in context.sources)
    evidence: dict[str, Any] = {
        "model": model,
        "trees": len(per_tree),
        "most_leaves_in_a_tree": most,
        "threshold": threshold,
        "basis": basis,
        "source": "SACRO-ML safemodel rules (min_samples_leaf >= 5)",
    }
    if parameters:
        evidence["parameters"] = parameters
    if rows and most * threshold > rows:
        evidence["source_records"] = rows
        return [
            Finding(
                "model.leaf_size",
                Verdict.FAIL,
                f"a tree of this {model} model has {most} leaves: {rows} source records "
                f"cannot give each of them {threshold}, so some leaf predicts fewer than "
                f"{threshold} records' own values",
                evidence,
                location,
            )
        ]
    if not sizes:
        return [
            Finding(
                "model.leaf_size",
                Verdict.REVIEW,
                f"this {model} model does not record how many training records reach each "
                f"leaf ({len(per_tree)} trees, up to {most} leaves); an officer must "
                f"confirm every leaf holds at least {threshold}",
                evidence,
                location,
            )
        ]
    leaves = np.concatenate(sizes) if sizes else np.zeros(0)
    small = int((leaves < threshold).sum())
    smallest = int(leaves.min()) if len(leaves) else 0
    evidence.update(
        {"leaves": len(leaves), "smallest_leaf": smallest, "leaves_below_threshold": small}
    )
    if small and not lower_bound:
        return [
            Finding(
                "model.leaf_size",
                Verdict.FAIL,
                f"{small} of {len(leaves)} leaves in {len(sizes)} trees of this {model} model "
                f"hold fewer than {threshold} training records (smallest: {smallest}, from "
                f"{basis}): a small leaf predicts its records' own values",
                evidence,
                location,
            )
        ]
    if small:
        return [
            Finding(
                "model.leaf_size",
                Verdict.REVIEW,
                f"{small} of {len(leaves)} leaves of this {model} model may hold fewer than "
                f"{threshold} training records ({basis} shows at least {smallest}); an "
                "officer must confirm the model's minimum leaf size",
                evidence,
                location,
            )
        ]
    return [
        Finding(
            "model.leaf_size",
            Verdict.PASS,
            f"every leaf of {len(sizes)} trees of this {model} model holds at least "
            f"{threshold} training records (smallest: {smallest}, from {basis})",
            evidence,
            location,
        )
    ]


def unreadable_model(what: str, fmt: str, exc: Exception, location: str = "") -> list[Finding]:
    """The fail for a model file that does not parse (``what``: "the skops file"): a file
    we cannot read is never passed on the strength of what we could not see."""
    return [
        Finding(
            "model.malformed",
            Verdict.FAIL,
            f"{what} cannot be read: {type(exc).__name__}: {str(exc)[:200]}",
            {"format": fmt},
            location,
        )
    ]
