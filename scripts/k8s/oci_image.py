"""Write a one-layer OCI image archive that ``ctr images import`` takes, with no registry.

    python3 oci_image.py OUT.tar NAME SRC=DEST [SRC=DEST ...] -- ENTRYPOINT [ARG ...]

Used by scripts/k8s.sh for the test cluster's sandbox ("pause") image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}"


def main(argv: list[str]) -> None:
    out, name, *rest = argv
    files = [a for a in rest if "=" in a]
    entrypoint = [a for a in rest if "=" not in a]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as layer:
        for item in files:
            src, dest = item.split("=", 1)
            info = layer.gettarinfo(src, dest.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755
            with open(src, "rb") as handle:
                layer.addfile(info, handle)
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    gz = gzip.compress(raw.getvalue(), mtime=0)
    with tarfile.open(out, "w") as tar:
        layer_digest = _blob(tar, gz)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": entrypoint},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode()
        config_digest = _blob(tar, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest,
                        "size": len(gz),
                    }
                ],
            }
        ).encode()
        manifest_digest = _blob(tar, manifest)
        index = json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest,
                        "size": len(manifest),
                        "annotations": {"io.containerd.image.name": name},
                    }
                ],
            }
        ).encode()
        for member, data in (("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main(sys.argv[1:])
