"""The manifest of an image's static files: what kernel code cannot choose.

Static answers (JupyterLab's bundles, themes, the server's static folder) are exempt from
the egress budget only when their bytes hash to a file of this manifest. It is made once
per image (by content id) in a throwaway container of the image, with no network, as
root: every regular file under the Jupyter data and static folders that root owns and no
one else may write. Kernel code runs in a different container, later, and cannot add to
it; a file it writes anywhere has another owner and another hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

_SCRIPT = r"""
import hashlib, json, os, stat, sys
if len(sys.argv) > 1:
    roots = json.loads(sys.argv[1])
else:
    roots = [os.path.join(sys.prefix, "share", "jupyter"), "/usr/share/jupyter",
             "/usr/local/share/jupyter"]
    try:
        import jupyter_server
        roots.append(os.path.join(os.path.dirname(jupyter_server.__file__), "static"))
    except Exception:
        pass
hashes = set()
for root in roots:
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
                continue
            if st.st_size > 32 * 1024 * 1024:
                continue
            with open(path, "rb") as f:
                hashes.add(hashlib.sha256(f.read()).hexdigest())
print(json.dumps(sorted(hashes)))
"""


def manifest_for(
    engine: Any, image: str, folder: Path, roots: tuple[str, ...] | None = None
) -> list[str]:
    """The sha256 digests of ``image``'s root-owned static files (cached by image id).

    ``roots``: the folders to hash (default: Jupyter's data and static folders; the
    restricted mode's viewer passes its page's folders).
    """
    image_id = engine.images.get(image).id.replace("sha256:", "")
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ""
    if roots is not None:
        suffix = "-" + hashlib.sha256(json.dumps(list(roots)).encode()).hexdigest()[:8]
    cached = folder / f"{image_id}{suffix}.json"
    if cached.exists():
        return list(json.loads(cached.read_text()))
    out = engine.containers.run(
        image,
        ["python3", "-c", _SCRIPT, *([] if roots is None else [json.dumps(list(roots))])],
        user="0",
        network_mode="none",
        remove=True,
        entrypoint=[],
        labels={"cleanroom.kind": "manifest"},
    )
    hashes = json.loads(out.decode())
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(hashes))
    os.replace(tmp, cached)
    return list(hashes)
