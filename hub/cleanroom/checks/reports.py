"""Other tools' verdicts that a release request carries: ACRO and SACRO-ML.

* **ACRO** (``acro`` in the workspace images) writes ``results.json`` when a researcher
  calls ``acro.finalise(folder, "json")``: one entry per output with ACRO's own status
  (pass, review, fail), a summary of its checks and the files it wrote. The airlock
  shows ACRO's verdict beside ours on each of those files.
* **SACRO-ML** (``sacroml``) writes ``report.json`` from its membership-inference
  attacks on a model: per attack, instance metrics such as ``AUC`` and ``Advantage``.
  The airlock shows the worst values on the request's model files, with pass or fail
  against the policy's ``models.max_attack_auc`` and ``models.max_attack_advantage``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cleanroom.checks import detect
from cleanroom.checks.types import CheckContext, Finding, Verdict

_MODEL_TYPES = {
    detect.PICKLE,
    detect.SAFETENSORS,
    detect.ONNX,
    detect.TORCH,
    detect.ZLIB,
    detect.XGBOOST_JSON,
    detect.XGBOOST_UBJ,
    detect.LIGHTGBM,
    detect.LIGHTGBM_JSON,
    detect.SKOPS,
}


def _json(data: bytes) -> Any:
    if detect.detect(data) != detect.JSON:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def acro_outputs(doc: Any) -> list[dict[str, Any]]:
    """ACRO's outputs in a ``results.json`` document (empty if it is not one)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("results"), Mapping):
        return []
    outputs = []
    for uid, entry in doc["results"].items():
        if not isinstance(entry, Mapping) or "status" not in entry or "summary" not in entry:
            return []
        files = [str(f.get("name")) for f in entry.get("files") or [] if isinstance(f, Mapping)]
        outputs.append(
            {
                "uid": str(uid),
                "status": str(entry.get("status", "")).lower(),
                "summary": str(entry.get("summary", ""))[:500],
                "command": str(entry.get("command", ""))[:300],
                "type": str(entry.get("type", "")),
                "files": files,
                "exception": str(entry.get("exception") or "")[:500],
            }
        )
    return outputs


def attack_metrics(doc: Any) -> list[dict[str, Any]]:
    """Per attack in a SACRO-ML report: its name and the worst AUC and advantage over
    its instances (empty if the document is not such a report)."""
    if not isinstance(doc, Mapping):
        return []
    found = []
    for key, entry in doc.items():
        if not isinstance(entry, Mapping) or "attack_experiment_logger" not in entry:
            continue
        logger = entry.get("attack_experiment_logger") or {}
        instances = logger.get("attack_instance_logger") if isinstance(logger, Mapping) else {}
        aucs: list[float] = []
        advantages: list[float] = []
        for metrics in (instances or {}).values():
            if not isinstance(metrics, Mapping):
                continue
            for name, out in (("AUC", aucs), ("Advantage", advantages)):
                value = metrics.get(name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out.append(float(value))
        meta: Mapping[str, Any] = entry.get("metadata") or {}
        if not isinstance(meta, Mapping):
            meta = {}
        found.append(
            {
                "attack": str(meta.get("attack_name") or meta.get("attack") or key)[:200],
                "auc": max(aucs) if aucs else None,
                "advantage": max(advantages) if advantages else None,
                "instances": len(instances or {}),
            }
        )
    return found


def _verdict(status: str) -> Verdict:
    try:
        return Verdict.parse(status)
    except ValueError:
        return Verdict.REVIEW


def attached_reports(files: Sequence[tuple[str, bytes]], context: CheckContext) -> list[Finding]:
    """Findings from ACRO results and SACRO-ML reports among ``files``, each placed on
    the file it concerns (``evidence["file"]``)."""
    findings: list[Finding] = []
    by_base = {name.rsplit("/", 1)[-1]: name for name, _ in files}
    models = [name for name, data in files if detect.detect(data) in _MODEL_TYPES]
    policy = context.policy.models
    for name, data in files:
        doc = _json(data)
        if doc is None:
            continue
        for output in acro_outputs(doc):
            targets = [by_base[f] for f in output["files"] if f in by_base] or [name]
            for target in targets:
                findings.append(
                    Finding(
                        "acro.checks",
                        _verdict(output["status"]),
                        f"ACRO's own checks ({output['uid']}, {output['type']}): "
                        f"{output['status']}; {output['summary']}",
                        {**output, "file": target, "results_file": name},
                        "ACRO",
                    )
                )
        for attack in attack_metrics(doc):
            auc, advantage = attack["auc"], attack["advantage"]
            over = (auc is not None and auc > policy.max_attack_auc) or (
                advantage is not None and advantage > policy.max_attack_advantage
            )
            unknown = auc is None and advantage is None
            verdict = Verdict.REVIEW if unknown else Verdict.FAIL if over else Verdict.PASS
            for target in models or [name]:
                findings.append(
                    Finding(
                        "model.attack_report",
                        verdict,
                        f"membership-inference attack {attack['attack']} ({name}): worst AUC "
                        f"{auc if auc is not None else 'not given'} (policy: at most "
                        f"{policy.max_attack_auc}), advantage "
                        f"{advantage if advantage is not None else 'not given'} (policy: at "
                        f"most {policy.max_attack_advantage})",
                        {
                            **attack,
                            "file": target,
                            "report_file": name,
                            "threshold": {
                                "auc": policy.max_attack_auc,
                                "advantage": policy.max_attack_advantage,
                            },
                        },
                        "SACRO-ML",
                    )
                )
    return findings
