"""JupyterLab's page config from disk, read once while its sources cannot change.

On every ``GET lab`` JupyterLab's ``LabHandler`` rebuilds the part of its page config
that comes from disk (``jupyterlab_server.config.get_page_config``): it walks every
labextension folder, opens each extension's ``package.json`` (and ``install.json``),
reads the application's ``static/package.json`` and every ``labconfig`` folder's
``page_config.json``. (``LabHandler.get_page_config`` carries an ``lru_cache``, but
keyed by the handler, a new object per request, so it never hits.)

In a workspace every one of those files is part of the image: root-owned, in root-owned
folders that neither the researcher (uid 1000) nor the server (uid 1001) can write, and
the user-writable labextension folders are taken off the path by ``link_extension``. So
the answer cannot change while the server runs, and it is computed once. The cache is
used only when that holds, checked when it is filled: each folder read (and each folder
above it, and the nearest existing folder above one that does not exist, where a file
could appear) and each file read must be owned by root and writable by no one else.
Otherwise (a developer's checkout, an in-process test under ``/tmp``) every page reads
the disk as before. Each page gets its own copy, so nothing one request changes reaches
the next. Per-request values (the user, the token, ``store_id``) are set by
``LabHandler`` and JupyterHub's hook after this, as before.
"""

from __future__ import annotations

import copy
import os
import stat
from collections.abc import Callable, Iterable
from glob import glob
from typing import Any

from jupyter_core.paths import jupyter_config_path

PageConfig = Callable[..., dict[str, Any]]
_PATCHED = "_cleanroom_fixed_page_config"


def fixed(path: str) -> bool:
    """Whether ``path`` (or, if it does not exist, the folder where it would appear) and
    every folder above it are owned by root and writable by root alone."""
    here = os.path.abspath(path)
    while not os.path.lexists(here):
        parent = os.path.dirname(here)
        if parent == here:
            return False
        here = parent
    while True:
        try:
            info = os.stat(here)
        except OSError:
            return False
        if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return False
        parent = os.path.dirname(here)
        if parent == here:
            return True
        here = parent


def sources(labextensions_path: Iterable[str], app_settings_dir: str | None) -> list[str]:
    """Every folder and file that ``get_page_config`` reads (or would, if it appeared)."""
    found: list[str] = []
    for folder in labextensions_path:
        found.append(folder)
        for pattern in ("[!@]*", os.path.join("@*", "*")):
            for ext in glob(os.path.join(folder, pattern)):
                found += [ext, os.path.join(ext, "package.json"), os.path.join(ext, "install.json")]
        found += glob(os.path.join(folder, "@*"))
    if app_settings_dir:
        found += [
            app_settings_dir,
            os.path.join(app_settings_dir, "page_config.json5"),
            os.path.join(app_settings_dir, "page_config.json"),
            os.path.join(os.path.dirname(app_settings_dir), "static", "package.json"),
        ]
    for folder in jupyter_config_path():
        labconfig = os.path.join(folder, "labconfig")
        found += [
            labconfig,
            os.path.join(labconfig, "page_config.json"),
            os.path.join(labconfig, "page_config.d"),
        ]
        found += glob(os.path.join(labconfig, "page_config.d", "*.json"))
    return found


def once_while_fixed(read: PageConfig) -> PageConfig:
    """``read`` (``get_page_config``), computed once per set of folders while all its
    sources are :func:`fixed`; a deep copy of that answer for each page."""
    if getattr(read, _PATCHED, False):
        return read
    known: dict[tuple[tuple[str, ...], str | None], dict[str, Any]] = {}
    changing: set[tuple[tuple[str, ...], str | None]] = set()

    def page_config(
        labextensions_path: list[str], app_settings_dir: str | None = None, logger: Any = None
    ) -> dict[str, Any]:
        key = (tuple(labextensions_path), app_settings_dir)
        if key in changing:
            return read(labextensions_path, app_settings_dir, logger=logger)
        if key not in known:
            if not all(fixed(p) for p in sources(labextensions_path, app_settings_dir)):
                changing.add(key)  # could change: read on every page, as JupyterLab does
                return read(labextensions_path, app_settings_dir, logger=logger)
            known[key] = read(labextensions_path, app_settings_dir, logger=logger)
        return copy.deepcopy(known[key])

    setattr(page_config, _PATCHED, True)
    return page_config


def install() -> bool:
    """Make JupyterLab's page handler use :func:`once_while_fixed`; False without
    JupyterLab."""
    try:
        from jupyterlab_server import handlers
    except ImportError:
        return False
    handlers.get_page_config = once_while_fixed(handlers.get_page_config)
    return True
