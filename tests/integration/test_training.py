"""A model's way out: trained in a real workspace, released only through the airlock.

The demo notebook shipped in the pytorch image (``/opt/cleanroom/examples``) runs end to
end on the CPU inside alice's workspace through ``jupyter nbconvert --execute``: it reads
the press-line data from /data in batches, trains, checkpoints to ~/work, saves the
weights as safetensors with a model risk report, and asks for their release. The
request reaches the airlock with both files; two officers approve; the author downloads
exactly the weights the workspace wrote. And the gpu tier refuses an image that cannot
use its GPU.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests
from cleanroom.images.build import ensure_images
from docker.models.containers import Container

from tests.integration.deployment import DATASET
from tests.integration.harness import Hub, run_in
from tests.integration.test_release_path import _xsrf

pytestmark = pytest.mark.docker

PROJECT = "p-train"
GPU_PROJECT = "p-gpu"
STEPS = 120
OUT = "work/press-line-model"
WEIGHTS = f"{OUT}/press_line_model.safetensors"
REPORT = f"{OUT}/press_line_model.report.json"


def _ok(hub: Hub, *args: str) -> None:
    done = hub.cli(*args)
    assert done.returncode == 0, f"{args}: {done.stderr}"


@pytest.fixture(scope="module")
def trained(hub: Hub) -> Iterator[tuple[Hub, Container, str]]:
    """Alice's pytorch workspace after the demo notebook ran; (hub, container, output)."""
    ensure_images(("pytorch",), progress=lambda line: print(line, flush=True))
    _ok(hub, "projects", "create", PROJECT, "--title", "Defect model", "--image", "pytorch")
    _ok(hub, "members", "add", PROJECT, "alice")
    _ok(hub, "datasets", "attach", PROJECT, DATASET)
    done = hub.cli_as("pat", "datasets", "approve", PROJECT, DATASET)
    assert done.returncode == 0, done.stderr
    hub.ensure_running("alice", PROJECT)
    container = hub.container("alice", PROJECT)
    code, output = run_in(
        container,
        "sh",
        "-c",
        "cp /opt/cleanroom/examples/train-press-line.ipynb work/ && "
        f"DEMO_STEPS={STEPS} jupyter nbconvert --to notebook --execute "
        "--ExecutePreprocessor.timeout=600 --output train-press-line.run.ipynb "
        "work/train-press-line.ipynb",
    )
    assert code == 0, output[-4000:]
    yield hub, container, output
    hub.stop_server("alice", PROJECT)


def _approve_all(hub: Hub, officer: str, rid: str, paths: list[str]) -> None:
    """One officer's review: approve every file, then complete the review once."""
    session = hub.airlock_session(officer)
    base = hub.airlock_url
    assert session.get(f"{base}requests/{rid}", timeout=30).status_code == 200
    for path in paths:
        page = session.get(f"{base}requests/{rid}/file?path={quote(path)}", timeout=30)
        assert page.status_code == 200, page.text[:300]
        vote = session.post(
            f"{base}requests/{rid}/vote",
            timeout=30,
            data={"path": path, "decision": "approve", "comment": "", "_xsrf": _xsrf(page.text)},
        )
        assert vote.status_code == 200, vote.text[:300]
    page = session.get(f"{base}requests/{rid}", timeout=30)
    done = session.post(
        f"{base}requests/{rid}/complete", data={"_xsrf": _xsrf(page.text)}, timeout=30
    )
    assert done.status_code == 200, done.text[:300]


def _read(container: Container, path: str) -> bytes:
    result = container.exec_run(["cat", f"/home/researcher/{path}"], user="1000", demux=True)
    assert result.exit_code == 0, result.output
    return result.output[0]


def test_no_gpu_for_a_tier_without_one(trained: tuple[Hub, Container, str]) -> None:
    _hub, container, _ = trained
    container.reload()
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert not container.attrs["HostConfig"].get("DeviceRequests")


def test_notebook_trained_checkpointed_and_reported(trained: tuple[Hub, Container, str]) -> None:
    _hub, container, _ = trained
    report = json.loads(_read(container, REPORT))
    assert report["kind"] == "cleanroom.model-risk-report"
    assert report["training"]["steps"] == STEPS
    assert report["training"]["device"] == "cpu"
    assert report["training"]["samples"] >= STEPS
    assert report["training"]["samples_per_second"] > 0
    assert report["data"]["dataset"] == DATASET
    assert report["data"]["train_rows"] + report["data"]["test_rows"] == 5_000
    assert 0.0 <= report["disclosure"]["membership_inference_auc"] <= 1.0
    assert 0.0 <= report["metrics"]["test_auc"] <= 1.0
    # The weights are tensors only, exactly those the report lists.
    code, out = run_in(
        container,
        "python",
        "-c",
        "import json; from safetensors import safe_open\n"
        f"f = safe_open('/home/researcher/{WEIGHTS}', 'pt')\n"
        "print(json.dumps({k: list(f.get_slice(k).get_shape()) for k in f.keys()}))",
    )
    assert code == 0, out
    assert json.loads(out) == report["model"]["tensors"]
    code, out = run_in(container, "ls", f"/home/researcher/{OUT}")
    assert code == 0 and "checkpoint.pt" in out.split()


def test_release_reaches_the_airlock_and_only_approval_lets_the_weights_out(
    trained: tuple[Hub, Container, str],
) -> None:
    hub, container, _ = trained
    rid = json.loads(_read(container, f"{OUT}/release-request.json"))["id"]
    weights = _read(container, WEIGHTS)
    listed = requests.get(
        f"{hub.public_url}/user/alice/{PROJECT}/cleanroom/api/releases",
        headers={"Authorization": f"token {hub.token('alice')}"},
        timeout=60,
    ).json()
    assert rid in {r["id"] for r in listed["requests"]}

    alice = hub.airlock_session("alice")
    early = alice.get(f"{hub.airlock_url}requests/{rid}/download?path={quote(WEIGHTS)}", timeout=30)
    assert early.status_code in (403, 404)

    olga = hub.airlock_session("olga")
    page = olga.get(f"{hub.airlock_url}requests/{rid}", timeout=30)
    assert page.status_code == 200
    assert WEIGHTS in page.text and REPORT in page.text
    shown = olga.get(f"{hub.airlock_url}requests/{rid}/file?path={quote(REPORT)}", timeout=30)
    assert shown.status_code == 200 and "membership_inference_auc" in shown.text

    _approve_all(hub, "olga", rid, [WEIGHTS, REPORT])
    _approve_all(hub, "otto", rid, [WEIGHTS, REPORT])
    page = olga.get(f"{hub.airlock_url}requests/{rid}", timeout=30)
    released = olga.post(
        f"{hub.airlock_url}requests/{rid}/release", data={"_xsrf": _xsrf(page.text)}, timeout=30
    )
    assert released.status_code == 200, released.text[:300]
    got = alice.get(f"{hub.airlock_url}requests/{rid}/download?path={quote(WEIGHTS)}", timeout=30)
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(weights).hexdigest()


def test_gpu_tier_refuses_an_image_that_cannot_use_the_gpu(hub: Hub) -> None:
    # A user of their own: the tier's one-workspace-per-user limit is checked first.
    _ok(hub, "users", "add", "gpu-trainer", "--password-env", "TEST_PASSWORD")
    _ok(hub, "projects", "create", GPU_PROJECT, "--title", "GPU", "--tier", "gpu")
    _ok(hub, "members", "add", GPU_PROJECT, "gpu-trainer")
    hub.standing("gpu-trainer")
    reply, _ = hub.spawn("gpu-trainer", GPU_PROJECT)
    assert reply.status_code == 403, reply.text
    assert "image 'notebook' cannot use a GPU" in reply.text and "pytorch-cuda" in reply.text
    assert not hub.docker.containers.list(
        all=True,
        filters={"label": ["cleanroom.user=gpu-trainer", f"cleanroom.project={GPU_PROJECT}"]},
    )
