"""Where a contents-API path really points: a work folder, a data mount, or elsewhere.

The file browser shows ``data`` and ``project`` as symlinks in the server's root dir, so
every decision is made on real paths: a read of ``data/x.csv`` and of ``work/link``
(a symlink the kernel made to ``/data/x.csv``) are both reads of the data mount.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from dataclasses import dataclass

from .errors import Refused


class Area(enum.Enum):
    """The kind of place a path lies in."""

    WORK = "work"
    DATA = "data"
    OTHER = "other"


@dataclass(frozen=True)
class WorkFolder:
    """One work folder: its name as the file browser shows it, and its real path."""

    api_path: str
    real_path: str


class WorkspacePaths:
    """Classifies contents-API paths (relative to the server root) by their real path."""

    def __init__(self, root_dir: str, work: tuple[str, ...], data: tuple[str, ...]) -> None:
        self.root_dir = os.path.realpath(root_dir)
        self.work = [WorkFolder(w.strip("/"), os.path.realpath(self._join(w))) for w in work]
        self.data_real = [os.path.realpath(self._join(d)) for d in data]

    def _join(self, path: str) -> str:
        # An absolute entry (such as /data) is taken as it is.
        return os.path.join(self.root_dir, path)

    def real(self, api_path: str) -> str:
        """The real path of a contents-API path (which need not exist).

        A path no file system could hold (a NUL byte, a name or path over the kernel's
        limits) is refused here with a 400, so no caller meets ``ValueError`` or
        ``ENAMETOOLONG`` further on.
        """
        check_api_path(api_path)
        return os.path.realpath(os.path.join(self.root_dir, api_path.strip("/")))

    @staticmethod
    def _within(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    def area(self, api_path: str) -> Area:
        """Which area the real path of ``api_path`` lies in (data wins over work)."""
        real = self.real(api_path)
        if any(self._within(real, d) for d in self.data_real):
            return Area.DATA
        if any(self._within(real, w.real_path) for w in self.work):
            return Area.WORK
        return Area.OTHER

    def inside(self, api_path: str) -> bool:
        """Whether the real path of ``api_path`` lies in the root dir, a work folder or a
        data mount. A symlink the kernel made to ``/proc/<server>/environ`` or to the
        server's ``/run/cleanroom`` does not: the server (another uid than kernels) would
        read what kernels may not, and hand it to the browser."""
        real = self.real(api_path)
        folders = [self.root_dir, *(w.real_path for w in self.work), *self.data_real]
        return any(self._within(real, folder) for folder in folders)

    def open_work_file(self, api_path: str) -> tuple[int, WorkFolder]:
        """Open a regular file inside a work folder for reading, following no symlink.

        The path must start with a work folder's name (``work/...``, ``project/...``);
        the work folder itself may be a symlink (``project`` is one), nothing below it
        may be. Each component is opened relative to its parent's descriptor with
        ``O_NOFOLLOW``, so code in the kernel cannot swap a component for a symlink
        between a check and the read. Returns the open descriptor (the caller closes
        it) and the work folder.
        """
        check_api_path(api_path)
        parts = [p for p in api_path.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise Refused(400, f"{api_path}: '..' is not allowed in a release path")
        folder = next(
            (w for w in self.work if parts[: len(w.api_path.split("/"))] == w.api_path.split("/")),
            None,
        )
        if folder is None:
            names = ", ".join(f"{w.api_path}/" for w in self.work)
            raise Refused(
                403, f"{api_path}: only files inside the work folders ({names}) can be released"
            )
        below = parts[len(folder.api_path.split("/")) :]
        if not below:
            raise Refused(400, f"{api_path}: a folder cannot be released, choose files")
        flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(folder.real_path, flags | os.O_DIRECTORY)
        except OSError as e:
            raise Refused(
                404, f"{api_path}: the work folder cannot be opened ({e.strerror})"
            ) from None
        try:
            for i, name in enumerate(below):
                last = i == len(below) - 1
                try:
                    # O_NONBLOCK: opening a FIFO the kernel made must not hang the server.
                    extra = os.O_NONBLOCK if last else os.O_DIRECTORY
                    child = os.open(name, flags | extra, dir_fd=fd)
                except OSError as e:
                    raise Refused(*_open_error(api_path, e)) from None
                os.close(fd)
                fd = child
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise Refused(400, f"{api_path}: a folder cannot be released, choose files")
            if not stat.S_ISREG(st.st_mode):
                raise Refused(400, f"{api_path}: only regular files can be released")
        except BaseException:
            os.close(fd)
            raise
        return fd, folder


# Linux's limits (NAME_MAX, PATH_MAX): longer names make every file call fail with
# ENAMETOOLONG, so they are refused as malformed input before any is made.
NAME_MAX = 255
PATH_MAX = 4096


def check_api_path(api_path: str) -> None:
    """Refuse (400) a path that no file could have: NUL bytes, surrogates that have no
    UTF-8 encoding, a name over NAME_MAX bytes or a path over PATH_MAX bytes."""
    shown = api_path[:80] + ("..." if len(api_path) > 80 else "")
    if "\x00" in api_path:
        raise Refused(400, f"{shown!r}: a path cannot contain a NUL byte")
    try:
        encoded = os.fsencode(api_path)
    except UnicodeError:
        raise Refused(400, f"{shown!r}: the path is not valid text") from None
    if len(encoded) > PATH_MAX:
        raise Refused(400, f"{shown!r}: the path is longer than {PATH_MAX} bytes")
    if any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        raise Refused(400, f"{shown!r}: a name in the path is longer than {NAME_MAX} bytes")


def _open_error(api_path: str, e: OSError) -> tuple[int, str]:
    if e.errno == errno.ELOOP:
        return 403, f"{api_path}: symbolic links cannot be released"
    if e.errno == errno.ENOTDIR:
        return 403, f"{api_path}: a component of the path is a symbolic link or not a folder"
    if e.errno == errno.ENOENT:
        return 404, f"{api_path}: no such file"
    if e.errno == errno.EISDIR:
        return 400, f"{api_path}: a folder cannot be released, choose files"
    return 403, f"{api_path}: cannot be read ({e.strerror})"
