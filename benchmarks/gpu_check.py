"""The device check: the demo model trained on a GPU, against the CPU, with the same torch.

Never part of CI; run where an accelerator machine is lent (see docs/benchmarks.md):

    python3 benchmarks/gpu_check.py --out "$OUT/gpu_check.json"

It needs only Python 3.11 and this machine kind's local wheel folder. In order:

1. makes a venv (``--venv``, default ``/tmp/cleanroom-gpu-check``) and installs the
   pytorch-cuda image's pins (``images/pytorch-cuda/requirements.txt``: torch 2.14.1
   with CUDA) plus the notebook image's pins of numpy, pandas, pyarrow and scikit-learn,
   all from the local wheel folders pip is configured with; then runs itself in it;
2. writes the synthetic press-line data (``cleanroom.demo.press_line``, 300 000 rows);
3. runs the code cells of the demo notebook
   (``images/pytorch/examples/train-press-line.ipynb``) twice, unchanged: on the CPU and
   on ``cuda``, the same steps and batches, with ``cleanroom_workspace``'s loader from
   this checkout;
4. samples ``nvidia-smi`` (GPU utilisation, memory) every 200 ms during the GPU run and
   keeps the samples taken while the training loop ran (its start and end times are in
   the notebook's report).

Prints and writes one JSON: the machine, torch's build, samples per second on each
device and their ratio, GPU utilisation while training. It reports; it never fails on
speed. Exits non-zero only when a run fails or no GPU is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "images" / "pytorch" / "examples" / "train-press-line.ipynb"
CUDA_REQUIREMENTS = ROOT / "images" / "pytorch-cuda" / "requirements.txt"
NOTEBOOK_LOCK = ROOT / "images" / "notebook" / "requirements.txt"
EXTENSION = ROOT / "extensions" / "cleanroom_workspace"
PRESS_LINE = ROOT / "hub" / "cleanroom" / "demo" / "press_line.py"
# What the notebook imports besides torch, pinned as in the workspace images.
FROM_NOTEBOOK_LOCK = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "joblib",
    "threadpoolctl",
    "python-dateutil",
    "pytz",
    "tzdata",
    "six",
)

# Run in a fresh interpreter for each device: the notebook's cells, with the workspace
# package's modules importable without its Jupyter server extension (its __init__).
_RUNNER = """
import sys, types
package = types.ModuleType("cleanroom_workspace")
package.__path__ = [{extension!r}]
sys.modules["cleanroom_workspace"] = package
"""


def _pins(path: Path, names: tuple[str, ...] | None = None) -> list[str]:
    pins = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        name = line.partition("==")[0].strip().lower().replace("_", "-")
        if "==" in line and (names is None or name in names):
            pins.append(line)
    return pins


def prepare(venv_dir: Path) -> Path:
    """A venv holding the pytorch-cuda image's torch and the notebook's libraries.

    All pins at once first. A machine without an index may lack a wheel or two that the
    image build fetches (cuda-bindings): then each pin is installed on its own without
    dependencies and the ones not found are named, so the run says what it ran with.
    """
    python = venv_dir / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    requirements = _pins(CUDA_REQUIREMENTS) + _pins(NOTEBOOK_LOCK, FROM_NOTEBOOK_LOCK)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    started = time.monotonic()
    if subprocess.run([*pip, *requirements], check=False).returncode != 0:
        missing = [
            pin
            for pin in requirements
            if subprocess.run([*pip, "--no-deps", pin], check=False).returncode != 0
        ]
        print(f"gpu_check: installed without {', '.join(missing) or 'nothing'}", flush=True)
    subprocess.run([str(python), "-c", "import torch, pyarrow, sklearn, safetensors"], check=True)
    print(f"gpu_check: venv ready in {time.monotonic() - started:.0f} s ({venv_dir})", flush=True)
    return python


def _code_cells() -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return "\n\n".join(
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in cells
        if cell["cell_type"] == "code"
    )


class Sampler:
    """``nvidia-smi`` readings (time, utilisation %, memory MiB) every 200 ms."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []
        self._process = subprocess.Popen(
            [
                "nvidia-smi",
                "--query-gpu=utilization.gpu,memory.used",
                "--format=csv,noheader,nounits",
                "-lms",
                "200",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            fields = [f.strip() for f in line.split(",")]
            try:
                self.samples.append((time.time(), float(fields[0]), float(fields[1])))
            except (ValueError, IndexError):
                continue  # "[N/A]" on some boards

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._thread.join(timeout=5)


def _train(python: Path, device: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    script = out / f"train-{device}.py"
    out.mkdir(parents=True, exist_ok=True)
    script.write_text(_RUNNER.format(extension=str(EXTENSION)) + _code_cells())
    env = {
        **os.environ,
        "DEMO_DEVICE": device,
        "DEMO_STEPS": str(args.steps),
        "DEMO_BATCH_ROWS": str(args.batch_rows),
        "DEMO_WORKERS": str(args.workers),
        "DEMO_DATA_ROOT": str(data),
        "DEMO_OUT": str(out / device),
        "DEMO_SKIP_RELEASE": "1",
    }
    env.pop("JUPYTERHUB_SERVICE_URL", None)
    done = subprocess.run([str(python), str(script)], env=env, capture_output=True, text=True)
    print(done.stdout[-2000:], flush=True)
    if done.returncode != 0:
        raise SystemExit(f"gpu_check: the {device} run failed:\n{done.stderr[-4000:]}")
    report: dict = json.loads((out / device / "press_line_model.report.json").read_text())
    return report


def _gpu_facts() -> dict[str, str]:
    if shutil.which("nvidia-smi") is None:
        raise SystemExit("gpu_check: no GPU visible (nvidia-smi is not installed)")
    done = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"gpu_check: no GPU visible (nvidia-smi: {done.stderr.strip()})")
    name, driver, memory = [f.strip() for f in done.stdout.splitlines()[0].split(",")]
    return {"gpu": name, "driver": driver, "gpu_memory": memory}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both training runs and the utilisation samples; the result as a dict."""
    import importlib.util

    facts = _gpu_facts()
    spec = importlib.util.spec_from_file_location("press_line", PRESS_LINE)
    assert spec and spec.loader
    press_line = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(press_line)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    press_line.write_press_line(data / "press-line", rows=args.rows, seed=7)
    python = Path(sys.executable)

    cpu = _train(python, "cpu", data, work, args)
    sampler = Sampler()
    try:
        gpu = _train(python, "cuda", data, work, args)
    finally:
        sampler.stop()
    begin, end = gpu["training"]["started_at"], gpu["training"]["finished_at"]
    during = [s for s in sampler.samples if begin <= s[0] <= end]
    utilisation = [s[1] for s in during]
    import torch

    result: dict[str, Any] = {
        "machine": {
            **facts,
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "cuda_build": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        },
        "settings": {
            "rows": args.rows,
            "steps": args.steps,
            "batch_rows": args.batch_rows,
            "loader_workers": args.workers,
        },
        "cpu": cpu["training"],
        "cuda": gpu["training"],
        "gpu_over_cpu": round(
            gpu["training"]["samples_per_second"] / cpu["training"]["samples_per_second"], 2
        ),
        "gpu_utilisation_while_training": {
            "samples": len(utilisation),
            "mean_percent": round(statistics.fmean(utilisation), 1) if utilisation else None,
            "median_percent": statistics.median(utilisation) if utilisation else None,
            "max_percent": max(utilisation) if utilisation else None,
            "max_memory_mib": max((s[2] for s in during), default=None),
        },
        "metrics": {"cpu": cpu["metrics"], "cuda": gpu["metrics"]},
    }
    return result


def main(argv: list[str] | None = None) -> int:
    """``python3 benchmarks/gpu_check.py [--out FILE]``: prepare, train on both, report."""
    parser = argparse.ArgumentParser(description="The demo model on the GPU against the CPU.")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/cleanroom-gpu-check"))
    parser.add_argument("--work", default="/tmp/cleanroom-gpu-check-work")
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-rows", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.in_venv:
        python = prepare(args.venv)
        return subprocess.run(
            [str(python), __file__, "--in-venv", *(argv or sys.argv[1:])]
        ).returncode
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
