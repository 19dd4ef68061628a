"""The Helm chart (charts/cleanroom), rendered and linted offline with the Helm SDK."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest
import yaml
from cleanroom.paths import repo_root

CHART = repo_root() / "charts" / "cleanroom"


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    chart = helm_python.Chart.load(str(CHART))
    try:
        out = chart.render(values or {}, name="demo", namespace="cr", is_install=True)
    finally:
        chart.close()
    return [doc for text in out.values() for doc in yaml.safe_load_all(text) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, [d["kind"] for d in docs]
    return found[0]


def env_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    hub = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in hub["env"]}


def test_the_chart_lints_clean() -> None:
    report = helm_python.lint(str(CHART))
    assert report["errors"] == [], report


def test_defaults_render_the_hub_with_its_rbac_state_and_policy() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    )
    env = env_of(docs)
    assert env["CLEANROOM_BACKEND"] == "kubernetes"
    assert env["CLEANROOM_K8S_HUB_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    # The policies the hub writes select exactly the hub pod the Deployment makes.
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for key in ("CLEANROOM_K8S_HUB_POD_LABELS", "CLEANROOM_K8S_GATEWAY_POD_LABELS"):
        assert json.loads(env[key]).items() <= pod_labels.items()
    # The egress gateway's ports, on the pod's loopback: not exposed as container ports.
    assert (env["CLEANROOM_GATEWAY_PORT"], env["CLEANROOM_GATEWAY_API_PORT"]) == ("8003", "8004")
    exposed = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert not {8003, 8004} & {p["containerPort"] for p in exposed}
    source = json.loads(env["CLEANROOM_K8S_DATASET_VOLUME_SOURCE"])
    assert source["nfs"]["path"] == "{location}"
    hub = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert hub["securityContext"]["runAsNonRoot"] is True
    ctx = hub["containers"][0]["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    # No database URL unless a Secret is named: SQLite in the state folder.
    assert not {"CLEANROOM_HUB_DB_URL", "CLEANROOM_REGISTRY_URL"} & env.keys()
    role = one(docs, "Role")
    assert {"pods", "persistentvolumeclaims"} <= set(role["rules"][0]["resources"])


def test_ingress_with_tls_storage_classes_and_postgres_from_values() -> None:
    docs = render(
        {
            "ingress": {"enabled": True, "host": "cr.example.org", "tls": {"secretName": "t"}},
            "storage": {"hubStateClass": "fast", "workspaceClass": "ceph-rwx"},
            "postgres": {
                "hub": {"secretName": "pg-hub", "secretKey": "url"},
                "registry": {"secretName": "pg-reg", "secretKey": "u"},
                "airlock": {"secretName": "pg-air", "secretKey": "url"},
            },
            "networkPolicy": {"enabled": False},
        }
    )
    ingress = one(docs, "Ingress")["spec"]
    assert ingress["tls"] == [{"hosts": ["cr.example.org"], "secretName": "t"}]
    assert ingress["rules"][0]["host"] == "cr.example.org"
    assert one(docs, "PersistentVolumeClaim")["spec"]["storageClassName"] == "fast"
    env = env_of(docs)
    assert env["CLEANROOM_K8S_STORAGE_CLASS"] == "ceph-rwx"
    assert env["CLEANROOM_HUB_DB_URL"] == {"secretKeyRef": {"name": "pg-hub", "key": "url"}}
    assert env["CLEANROOM_REGISTRY_URL"] == {"secretKeyRef": {"name": "pg-reg", "key": "u"}}
    assert env["CLEANROOM_AIRLOCK_DB_URL"] == {"secretKeyRef": {"name": "pg-air", "key": "url"}}
    assert not [d for d in docs if d["kind"] == "NetworkPolicy"]


def test_an_unknown_database_is_refused_with_its_name() -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"postgres\.metrics"):
        render({"postgres": {"metrics": {"secretName": "x", "secretKey": "url"}}})
