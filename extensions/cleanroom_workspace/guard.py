"""The route-by-route rules: which requests the workspace refuses, and why.

`WorkspaceGuard.check` is called by the authorizer for every authorized request, with the
handler that will serve it. It decides on the handler's class and the request itself, so
it can tell a download (``/files/``) from an editor read (``/api/contents``), which the
action/resource pair alone cannot: both are ``read`` on ``contents``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import json
import os
import re
import tempfile
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.kernelspecs.handlers import KernelSpecResourceHandler
from jupyter_server.nbconvert.handlers import NbconvertFileHandler, NbconvertPostHandler
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.view.handlers import ViewHandler
from tornado.web import RequestHandler

from .audit import AuditLog
from .errors import Refused, blocked
from .paths import Area, WorkspacePaths, check_api_path
from .policy import WorkspacePolicy

# Kernel logos as JupyterLab asks for them (logo-32x32.png, logo-64x64.png, logo-svg.svg).
LOGO_NAME = re.compile(r"logo-(?:\d{1,4}x\d{1,4}\.png|svg\.svg)")
_READ_CHUNK = 1 << 20


def _route_arg(handler: RequestHandler, name: str, index: int) -> str:
    """A path argument of the handler's route, by group name or position, without slashes
    at either end (the contents routes capture the leading one)."""
    if name in handler.path_kwargs:
        return str(handler.path_kwargs[name] or "").strip("/")
    if len(handler.path_args) > index:
        return str(handler.path_args[index] or "").strip("/")
    return ""


def _is_utf8_file(real: str) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(real, "rb") as f:
            while chunk := f.read(_READ_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except (UnicodeDecodeError, OSError):
        return False
    return True


def _is_text(data: bytes, *, first: bool, final: bool) -> bool:
    """Whether ``data`` is UTF-8 text without NUL bytes.

    For a middle chunk of a chunked upload, a character may straddle the chunk
    boundaries, so up to three leading continuation bytes are skipped and an
    incomplete trailing character is accepted.
    """
    if b"\x00" in data:
        return False
    if not first:
        skip = 0
        while skip < min(3, len(data)) and 0x80 <= data[skip] < 0xC0:
            skip += 1
        data = data[skip:]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
    except UnicodeDecodeError:
        return False
    return True


_MODEL_CHOICES = {
    "type": ("file", "notebook", "directory"),
    "format": ("text", "base64", "json"),
}
_MODEL_CONTENT = {"file": (str,), "notebook": (dict,), "directory": ()}


def contents_model(body: bytes) -> dict[str, Any]:
    """The contents-API model of a write (PUT, POST, PATCH), checked for shape.

    Jupyter's own handlers trust the model's types (a list as ``path``, a dict as
    ``type``, bytes that are not UTF-8) and answer such input with a 500; the guard sees
    every write first, so it refuses a malformed model with a 400 that says what is wrong.
    An empty body is an empty model (Jupyter makes a new untitled file of it).
    """
    if not body.strip():
        return {}
    try:
        model = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Refused(400, "the request body is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise Refused(400, "the request body is not valid JSON") from None
    if not isinstance(model, dict):
        raise Refused(400, "the request body must be a JSON object (a contents model)")
    for key in ("path", "copy_from", "name", "ext"):
        value = model.get(key)
        if value is not None and not isinstance(value, str):
            raise Refused(400, f"'{key}' must be a string")
        if isinstance(value, str) and key in ("path", "copy_from"):
            check_api_path(value)
    for key, allowed in _MODEL_CHOICES.items():
        value = model.get(key)
        if value not in (None, "", *allowed):
            raise Refused(400, f"'{key}' must be one of {', '.join(allowed)}")
    chunk = model.get("chunk")
    if chunk is not None and (type(chunk) is not int or not (chunk == -1 or 1 <= chunk < 2**31)):
        raise Refused(400, "'chunk' must be a whole number from 1, or -1 for the last")
    content = model.get("content")
    kinds = _MODEL_CONTENT.get(str(model.get("type") or "file"), (str,))
    if content is not None and not isinstance(content, kinds):
        wanted = " or ".join({str: "a string", dict: "a JSON object"}[k] for k in kinds)
        raise Refused(
            400, f"the content of a {model.get('type') or 'file'} must be {wanted or 'absent'}"
        )
    return model


class WorkspaceGuard:
    """Applies the workspace policy to requests made to the Jupyter server."""

    def __init__(
        self,
        policy: WorkspacePolicy,
        paths: WorkspacePaths,
        audit: AuditLog,
        user_writable_roots: list[str] | None = None,
    ) -> None:
        self.policy = policy
        self.paths = paths
        self.audit = audit
        if user_writable_roots is None:
            user_writable_roots = [
                os.path.expanduser("~"),
                paths.root_dir,
                tempfile.gettempdir(),
                jupyter_data_dir(),
            ]
        self.user_writable_roots = [os.path.realpath(p) for p in user_writable_roots]

    def check(self, handler: RequestHandler, action: str, resource: str) -> None:
        """Raise `Refused` when the request served by ``handler`` must not happen."""
        if isinstance(handler, FilesHandler | ViewHandler):
            raise blocked(
                "Files cannot be downloaded from a clean-room workspace, "
                "nor opened in a new browser tab."
            )
        if isinstance(handler, NbconvertFileHandler | NbconvertPostHandler):
            raise blocked("Notebooks cannot be exported or downloaded from a clean-room workspace.")
        if isinstance(handler, KernelSpecResourceHandler):
            self._check_kernelspec_resource(handler)
        elif isinstance(handler, ContentsHandler):
            method = handler.request.method
            self._refuse_outside(_route_arg(handler, "path", 0))
            if method == "GET":
                self._check_contents_read(handler)
            elif method in ("PUT", "POST"):
                self._check_contents_write(handler, method)
            elif method == "PATCH":
                self._check_rename(handler)
            elif method == "DELETE":
                self._refuse_data_change(_route_arg(handler, "path", 0), "deleted")

    # -- kernel specs -------------------------------------------------------------------

    def _check_kernelspec_resource(self, handler: RequestHandler) -> None:
        name = _route_arg(handler, "kernel_name", 0)
        resource = _route_arg(handler, "path", 1)
        if not LOGO_NAME.fullmatch(resource):
            raise blocked(f"Only kernel logos are served from kernel specs, not {resource!r}.")
        try:
            spec = handler.kernel_spec_manager.get_kernel_spec(name)  # type: ignore[attr-defined]
        except KeyError:
            return  # unknown kernel (NoSuchKernel): the handler answers 404
        resource_dir = getattr(spec, "resource_dir", None)
        if not isinstance(resource_dir, str):
            # A kernel spec manager that does not say where its files are: fail closed.
            raise blocked(f"Files of kernel spec {name!r} cannot be checked, so are not served.")
        resource_dir = os.path.realpath(resource_dir)
        for root in self.user_writable_roots:
            if resource_dir == root or resource_dir.startswith(root.rstrip(os.sep) + os.sep):
                # A kernel spec the researcher wrote could carry any bytes as its "logo".
                raise blocked(
                    f"Kernel spec {name!r} lives in a folder you can write to; "
                    "its files are not served."
                )

    # -- contents reads -----------------------------------------------------------------

    def _check_contents_read(self, handler: RequestHandler) -> None:
        path = _route_arg(handler, "path", 0)
        if handler.get_query_argument("content", "1") == "0":
            return  # metadata only: names, sizes, dates
        real = self.paths.real(path)
        if not os.path.isfile(real):
            return  # folder listings are allowed; missing paths get the server's 404
        area = self.paths.area(path)
        if area is Area.DATA:
            raise blocked(
                f"{path} is in a read-only data folder. Data reaches your kernel, never the "
                f"browser as a file: read it from code (for example from {real!r})."
            )
        size = os.path.getsize(real)
        rules = self.policy.contents
        if size > rules.max_read_bytes:
            raise blocked(
                f"{path} is {size} bytes; the browser may open files of at most "
                f"{rules.max_read_bytes} bytes."
            )
        fmt = handler.get_query_argument("format", None)
        kind = handler.get_query_argument("type", None)
        notebook = kind == "notebook" or (kind is None and path.endswith(".ipynb"))
        raw = fmt == "base64" or (fmt is None and not notebook and not _is_utf8_file(real))
        if not raw:
            return
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in rules.base64_allowlist:
            raise blocked(
                f"{path} is not a text file, and binary files are not sent to the browser."
            )
        if size > rules.max_base64_bytes:
            raise blocked(
                f"{path} is {size} bytes; images of at most {rules.max_base64_bytes} bytes "
                "are shown in the browser."
            )

    def _refuse_outside(self, path: str) -> None:
        if not self.paths.inside(path):
            raise blocked(
                f"{path} points outside the workspace's folders (home, work, project, data)."
            )

    # -- contents writes ----------------------------------------------------------------

    def _refuse_data_change(self, path: str, verb: str) -> None:
        if self.paths.area(path) is Area.DATA:
            raise Refused(403, f"{path} is in a read-only data folder and cannot be {verb}.")

    def _refuse_data_source(self, source: str) -> None:
        if self.paths.area(source) is Area.DATA:
            raise blocked(
                f"{source} is in a read-only data folder; copy data from your kernel's code, "
                "not through the browser."
            )

    def _check_contents_write(self, handler: RequestHandler, method: str) -> None:
        path = _route_arg(handler, "path", 0)
        model = contents_model(handler.request.body)
        copy_from = model.get("copy_from")
        if isinstance(copy_from, str) and copy_from:
            self._refuse_outside(copy_from)
            self._refuse_data_source(copy_from)
        self._refuse_data_change(path, "written")
        # PUT names the file, POST the folder a new file goes into: that folder must be
        # there (Jupyter's own handler answers a 500 when it is not).
        self._require_folder(os.path.dirname(path.strip("/")) if method == "PUT" else path)
        if method == "PUT" and model.get("content") is not None:
            self._check_upload(handler, path, model)

    def _check_rename(self, handler: RequestHandler) -> None:
        path = _route_arg(handler, "path", 0)
        self._refuse_data_change(path, "moved")
        model = contents_model(handler.request.body)
        new_path = model.get("path")
        if not isinstance(new_path, str) or not new_path.strip("/"):
            raise Refused(400, "a rename needs the new 'path' (a string)")
        self._refuse_outside(new_path)
        self._refuse_data_change(new_path, "written")
        self._require_folder(os.path.dirname(new_path.strip("/")))

    def _require_folder(self, api_path: str) -> None:
        real = self.paths.real(api_path)
        if os.path.isdir(real):
            return
        if os.path.exists(real):
            raise Refused(400, f"{api_path}: a file, not a folder (save a file with PUT)")
        raise Refused(404, f"{api_path or '/'}: no such folder")

    def _check_upload(self, handler: RequestHandler, path: str, model: dict[str, Any]) -> None:
        existed = os.path.exists(self.paths.real(path))
        record: dict[str, Any] = {"path": path, "type": model.get("type"), "replaces": existed}
        try:
            if model.get("type") == "notebook":
                self._check_notebook_upload(handler, path, record)
            else:
                self._check_file_upload(path, model, existed, record)
        except Refused as e:
            self.audit.record("upload", decision="refused", reason=e.message, **record)
            raise
        self.audit.record("upload", decision="allowed", **record)

    def _check_notebook_upload(
        self, handler: RequestHandler, path: str, record: dict[str, Any]
    ) -> None:
        limit = self.policy.uploads.max_notebook_bytes
        size = len(handler.request.body)
        record.update(size=size, sha256=hashlib.sha256(handler.request.body).hexdigest())
        if size > limit:
            raise Refused(
                413,
                f"{path}: a notebook of {size} bytes is over the workspace's limit "
                f"of {limit} bytes.",
            )

    def _check_file_upload(
        self, path: str, model: dict[str, Any], existed: bool, record: dict[str, Any]
    ) -> None:
        rules = self.policy.uploads
        content = model["content"]
        if not isinstance(content, str):
            raise Refused(400, f"{path}: file content must be a string")
        if model.get("format") == "base64":
            try:
                data = base64.b64decode(content.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise Refused(400, f"{path}: the content is not valid base64") from None
        else:
            data = content.encode("utf-8")
        chunk = model.get("chunk")
        # Chunk 1 starts a file; later chunks (2, 3, ..., and -1 for the last) append
        # to it, so their limit counts what is already there.
        first = chunk in (None, 1)
        final = chunk in (None, -1)
        existing = 0 if first or not existed else os.path.getsize(self.paths.real(path))
        total = existing + len(data)
        record.update(size=total, chunk=chunk, sha256=hashlib.sha256(data).hexdigest())
        if total > rules.max_bytes:
            raise Refused(
                413,
                f"{path}: {total} bytes is over the workspace's upload limit "
                f"of {rules.max_bytes} bytes.",
            )
        if not rules.allow_binary and not _is_text(data, first=first, final=final):
            raise Refused(415, f"{path}: only text files (UTF-8) may be uploaded to the workspace.")
