"""Lifecycle benchmarks: ``python -m benchmarks.lifecycle [--quick]``.

- **Backup and restore throughput** of ``cleanroom backup`` (encrypted, chunked) against a
  plain ``tar`` of the same state folder plus ``sqlite3 .backup`` of its database, in the
  same run; and a second, incremental backup of the unchanged state. Ratio = ours / plain
  throughput (1.0: as fast as tar; above 1: faster).
- **Encrypted workspace file I/O**: sequential and random (4 KiB) writes and reads inside
  a workspace container, on an encrypted (fscrypt) folder and on a plain one of the same
  size, same run. Reads come after the folder was unmounted and mounted again, so they
  come from the disk (through the decryption), not the page cache. Ratio = encrypted /
  plain throughput.

It reports (JSON on stdout, ``--out`` file, a Markdown table on stderr); it never fails
on time. Needs root and the Docker engine for the I/O part (``--parts backup`` does not).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MiB = 2**20

_IO_SCRIPT = r"""
import os, random, sys, time, json
mode, path, size, block = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t = time.perf_counter()
if mode == "seq-write":
    buf = os.urandom(block)
    with open(path, "wb") as f:
        for _ in range(size // block):
            f.write(buf)
        f.flush(); os.fsync(f.fileno())
elif mode == "seq-read":
    with open(path, "rb") as f:
        while f.read(block):
            pass
elif mode in ("rand-write", "rand-read"):
    rng = random.Random(7)
    fd = os.open(path, os.O_RDWR)
    offsets = [rng.randrange(size // 4096) * 4096 for _ in range(size // 4096 // 4)]
    buf = os.urandom(4096)
    for off in offsets:
        if mode == "rand-write":
            os.pwrite(fd, buf, off)
        else:
            os.pread(fd, 4096, off)
    if mode == "rand-write":
        os.fsync(fd)
    os.close(fd)
    size = len(offsets) * 4096
print(json.dumps({"seconds": time.perf_counter() - t, "bytes": size}))
"""


def _mbps(result: dict[str, float]) -> float:
    return result["bytes"] / MiB / max(result["seconds"], 1e-9)


# -- backup --------------------------------------------------------------------------------
def _make_state(state: Path, megabytes: int) -> None:
    """A state folder: library files (half random, half text), a database, blobs."""
    rng = random.Random(11)
    library = state / "library" / "press" / "v1"
    library.mkdir(parents=True)
    for i in range(max(1, megabytes // 8)):
        half = 4 * MiB
        text = "".join(f"{rng.random():.6f},{i}\n" for _ in range(half // 11))[:half]
        (library / f"part-{i}.bin").write_bytes(os.urandom(half) + text.encode())
    db = sqlite3.connect(state / "registry.sqlite")
    db.execute("create table journal (seq integer primary key, body text)")
    db.executemany(
        "insert into journal (body) values (?)", ((f"entry {i} " * 8,) for i in range(50_000))
    )
    db.commit()
    db.close()


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_backup(megabytes: int) -> dict[str, Any]:
    """Our backup, incremental backup and restore against tar and sqlite3 .backup."""
    from cleanroom.lifecycle import backup
    from cleanroom.lifecycle.keys import KeySource

    with tempfile.TemporaryDirectory(prefix="cleanroom-bench-backup-") as tmp:
        root = Path(tmp)
        state = root / "state"
        _make_state(state, megabytes)
        size = sum(p.stat().st_size for p in state.rglob("*") if p.is_file())
        key = root / "master.key"
        key.write_text(os.urandom(32).hex())
        source = KeySource(None, key)
        repo = root / "repo"
        ours = _timed(lambda: backup.create(state, repo, source=source))
        snap_id = backup.Repository(repo, source).snapshots()[-1].id
        again = _timed(lambda: backup.create(state, repo, source=source))

        def plain() -> None:
            subprocess.run(
                ["sqlite3", str(state / "registry.sqlite"), f".backup {root / 'db.copy'}"],
                check=True,
            )
            subprocess.run(
                ["tar", "-cf", str(root / "state.tar"), "--exclude=registry.sqlite",
                 "-C", str(state), "."],
                check=True,
            )  # fmt: skip
            # Ours is on disk when it returns (fsync per chunk): so must the baseline be.
            subprocess.run(["sync", str(root / "state.tar"), str(root / "db.copy")], check=True)

        tar = _timed(plain)
        restored = _timed(lambda: backup.restore(snap_id, root / "restored", repo, source=source))
        (root / "untar").mkdir()

        def plain_restore() -> None:
            subprocess.run(
                ["tar", "-xf", str(root / "state.tar"), "-C", str(root / "untar")], check=True
            )
            subprocess.run(["sync", "-f", str(root / "untar")], check=True)

        untar = _timed(plain_restore)
    mb = size / MiB
    return {
        "state_mib": round(mb, 1),
        "backup_mibps": mb / ours,
        "incremental_mibps": mb / again,
        "tar_mibps": mb / tar,
        "restore_mibps": mb / restored,
        "untar_mibps": mb / untar,
        "ratio_backup": tar / ours,
        "ratio_incremental": tar / again,
        "ratio_restore": untar / restored,
    }


# -- encrypted I/O ---------------------------------------------------------------------------
def bench_io(megabytes: int, image: str) -> dict[str, Any]:
    """Sequential and random I/O in a workspace container, encrypted vs plain folder."""
    import docker
    from cleanroom.lifecycle.fscrypt import KEY_SIZE
    from cleanroom.workspace import storage_quota

    client = docker.from_env()
    instance = "benchio"
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cleanroom-bench-io-") as tmp:
        try:
            for kind, key in (("plain", None), ("encrypted", os.urandom(KEY_SIZE))):
                image_file = Path(tmp) / f"{kind}.ext4"

                def volume(image_file: Path = image_file, key: bytes | None = key) -> str:
                    return storage_quota.ensure_folder_volume(
                        client, image_file=image_file, size=(megabytes * 2 + 64) * MiB,
                        uid=1000, instance=instance, labels={}, key=key,
                    )  # fmt: skip

                for mode in ("seq-write", "seq-read", "rand-write", "rand-read"):
                    name = volume()
                    out = client.containers.run(
                        image,
                        ["python3", "-c", _IO_SCRIPT, mode, "/w/data.bin",
                         str(megabytes * MiB), str(MiB)],
                        entrypoint=[], user="1000:1000", network_disabled=True, remove=True,
                        volumes={name: {"bind": "/w", "mode": "rw,nocopy"}},
                        labels={"cleanroom.instance": instance},
                    )  # fmt: skip
                    results[f"{kind} {mode}"] = json.loads(out.decode().strip().splitlines()[-1])
                    # Unmounted and detached: the next phase reads from the disk.
                    storage_quota.detach_unused(image_file)
        finally:
            storage_quota.release_all(client, instance, Path(tmp))
    report: dict[str, Any] = {"mib": megabytes, "kernel_xts_aes": kernel_cipher("xts(aes)")}
    for mode in ("seq-write", "seq-read", "rand-write", "rand-read"):
        plain, enc = _mbps(results[f"plain {mode}"]), _mbps(results[f"encrypted {mode}"])
        report[mode] = {"plain_mibps": plain, "encrypted_mibps": enc, "ratio": enc / plain}
    return report


def kernel_cipher(name: str) -> str:
    """The kernel's driver for a cipher (``/proc/crypto``): fscrypt's speed is the
    kernel's, and ``aes-generic``/``aes-fixed-time`` means no AES instructions are used."""
    try:
        blocks = Path("/proc/crypto").read_text().split("\n\n")
    except OSError:
        return "unknown"
    best = ("unknown", -1)
    for block in blocks:
        fields = dict(
            (k.strip(), v.strip())
            for k, _, v in (line.partition(":") for line in block.splitlines())
        )
        if fields.get("name") == name and int(fields.get("priority", "0")) > best[1]:
            best = (fields.get("driver", "unknown"), int(fields.get("priority", "0")))
    return best[0]


def markdown(result: dict[str, Any]) -> str:
    """The tables for docs/benchmarks.md."""
    lines = []
    if "backup" in result:
        b = result["backup"]
        lines += [
            f"Backup of a {b['state_mib']} MiB state folder (MiB/s; ratio = ours / plain):",
            "",
            "| operation | cleanroom backup | tar + sqlite3 .backup | ratio |",
            "|---|---|---|---|",
            f"| backup (first) | {b['backup_mibps']:.1f} | {b['tar_mibps']:.1f} "
            f"| {b['ratio_backup']:.2f} |",
            f"| backup (unchanged state, incremental) | {b['incremental_mibps']:.1f} "
            f"| {b['tar_mibps']:.1f} | {b['ratio_incremental']:.2f} |",
            f"| restore | {b['restore_mibps']:.1f} | {b['untar_mibps']:.1f} "
            f"| {b['ratio_restore']:.2f} |",
            "",
        ]
    if "io" in result:
        io = result["io"]
        lines += [
            f"Workspace file I/O on a {io['mib']} MiB file (MiB/s; ratio = encrypted / plain; "
            f"the kernel's AES-XTS: `{io['kernel_xts_aes']}`):",
            "",
            "| operation | plain ext4 | fscrypt ext4 | ratio |",
            "|---|---|---|---|",
        ]
        for mode in ("seq-write", "seq-read", "rand-write", "rand-read"):
            r = io[mode]
            lines.append(
                f"| {mode} | {r['plain_mibps']:.1f} | {r['encrypted_mibps']:.1f} "
                f"| {r['ratio']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts; print the JSON result."""
    from cleanroom.settings import image_repository

    parser = argparse.ArgumentParser(prog="python -m benchmarks.lifecycle")
    parser.add_argument("--parts", default="backup,io", help="backup, io (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--backup-mib", type=int, default=256)
    parser.add_argument("--io-mib", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - {"backup", "io"}:
        parser.error(f"unknown parts {sorted(parts - {'backup', 'io'})}")
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if "backup" in parts:
        result["backup"] = bench_backup(16 if args.quick else args.backup_mib)
    if "io" in parts:
        image = f"{image_repository()}/notebook:latest"
        result["io"] = bench_io(8 if args.quick else args.io_mib, image)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)
    print(markdown(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
