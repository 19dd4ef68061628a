"""The data library: registering an immutable, checksummed, read-only dataset version.

Registration copies the provider's files into ``<state>/library/<name>/<version>``
(an encrypted filesystem of its own, ``cleanroom.library.at_rest``) under a temporary
name and one rename, so a failure at any point leaves either the whole version
registered or nothing at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanroom import paths
from cleanroom.errors import Conflict, Forbidden, InvalidInput
from cleanroom.library import at_rest
from cleanroom.library.quality import RowProgress
from cleanroom.registry import DatasetInfo, Registry, names
from cleanroom.registry.events import DatasetRolesSet
from cleanroom.registry.governance import Governance

Progress = Callable[[int, int, str], None]
"""Called with (bytes done, bytes in all, file being copied)."""

_CHUNK = 1 << 20


def _walk_files(source: Path) -> list[Path]:
    """Every regular file under ``source``; anything else is refused, with its path."""
    if source.is_symlink():
        raise InvalidInput(f"{source} is a symbolic link; give the real file or folder")
    if not source.exists():
        raise InvalidInput(f"{source} does not exist")
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise InvalidInput(f"{source} is neither a file nor a folder")
    found: list[Path] = []
    for root, dirs, files in os.walk(source):
        for entry in sorted(dirs) + sorted(files):
            path = Path(root, entry)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise InvalidInput(f"{path} is a symbolic link; datasets hold real files only")
            if entry.startswith("."):
                raise InvalidInput(f"{path} is a hidden file or folder; remove it or rename it")
            if stat.S_ISREG(mode):
                found.append(path)
            elif not stat.S_ISDIR(mode):
                raise InvalidInput(f"{path} is not a regular file")
    if not found:
        raise InvalidInput(f"{source} holds no files")
    return sorted(found)


def _copy_and_hash(
    src: Path, dst: Path, done: int, total: int, progress: Progress | None
) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
            if progress:
                progress(done + size, total, src.name)
        fout.flush()
        os.fsync(fout.fileno())
    return size, digest.hexdigest()


def _make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for f in filenames:
            os.chmod(Path(dirpath, f), 0o444)
        for d in dirnames:
            os.chmod(Path(dirpath, d), 0o555)
    os.chmod(root, 0o555)


def register_dataset(
    registry: Registry,
    source: Path,
    *,
    name: str,
    version: str,
    provider: str,
    actor: str,
    progress: Progress | None = None,
    build_index: bool = True,
    schema: dict[str, Any] | None = None,
    classification: str | None = None,
    description: str = "",
    licence: str = "",
    quality_progress: RowProgress | None = None,
) -> DatasetInfo:
    """Copy ``source`` (a file or folder) into the library as ``name`` ``version``.

    Files are checksummed (sha256) while copied, made read-only, and a disclosure-check
    index is built beside the library (hashes only) when the checks library is present.
    Every table is verified against ``schema`` (a Frictionless Table Schema; None:
    profiled against inferred types) and profiled, streaming (cleanroom.library.quality);
    the version's card (``classification``, default: the policy's; ``description``,
    ``licence``, the schema and the quality report) is recorded in the same transaction
    as the version. A version that fails its provider's schema is registered
    ``quarantined``: no workspace mounts it until the provider accepts it.
    """
    from cleanroom.library.classification import load_policy
    from cleanroom.library.quality import check_schema, verify_version
    from cleanroom.registry.library import NewCard

    names.dataset_name(name)
    names.version(version)
    if not provider.strip():
        raise InvalidInput("a dataset needs a provider")
    policy = load_policy()
    category = policy.get(classification).name if classification else policy.default
    if schema is not None:
        schema = check_schema(schema)
    if registry.dataset_exists(name, version):
        raise Conflict(f"dataset {name} version {version} exists already; versions are immutable")
    source = Path(source)
    files = _walk_files(source)
    base = source if source.is_dir() else source.parent
    total = sum(f.stat().st_size for f in files)

    final = paths.library_dir() / name / version
    if at_rest.exists(final):
        raise Conflict(f"{final} exists already but is not registered; move it away first")
    index_path: Path | None = None
    try:
        records: list[tuple[str, int, str]] = []
        # Storage (cleanroom.library.at_rest): the files land in the version's encrypted
        # filesystem (or a plain folder with encryption off), made whole or not at all.
        with at_rest.new_version(
            final, name, version, total=total, files=len(files), keyring=at_rest.library_keyring()
        ) as staging:
            done = 0
            for f in files:
                rel = f.relative_to(base)
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                size, sha = _copy_and_hash(f, staging / rel, done, total, progress)
                done += size
                records.append((rel.as_posix(), size, sha))
            quality = verify_version(
                staging, [r for r, _, _ in records], schema, progress=quality_progress
            )
            if build_index:
                index_path = _build_index(
                    staging, [staging / r for r, _, _ in records], name, version
                )
            _make_read_only(staging)
        info = DatasetInfo(
            name=name,
            version=version,
            provider=provider.strip(),
            location=str(final),
            total_bytes=total,
            files=tuple(records),
            index_location=str(index_path) if index_path else None,
        )
        try:
            card = NewCard(
                classification=category,
                status=quality.status,
                description=description,
                licence=licence,
                table_schema=schema,
                quality=quality.report,
            )
            return Governance(registry).register_dataset_version(info, card, actor=actor)
        except Exception:
            at_rest.discard_version(final)
            raise
    except BaseException:
        if index_path is not None:
            shutil.rmtree(index_path, ignore_errors=True)
        raise


def roles_card(name: str, version: str) -> Path:
    """Where a dataset version's confirmed column roles are kept (beside its index, so
    that every rebuild of the index uses them; the library copy stays read-only)."""
    return paths.index_dir() / name / f"{version}.roles.yaml"


def read_roles_card(name: str, version: str) -> dict[str, str] | None:
    """The confirmed roles of a version, or None when the provider has set none (the
    version's own ``roles.yaml``, if it shipped one, or inference applies)."""
    import yaml

    from cleanroom.checks.roles import validate_roles

    card = roles_card(name, version)
    if not card.is_file():
        return None
    data = yaml.safe_load(card.read_text(encoding="utf-8")) or {}
    return validate_roles(data.get("columns", {}), where=str(card))


def write_roles_card(name: str, version: str, roles: dict[str, str]) -> Path:
    """Write the confirmed roles (atomically: a half-written card is never read)."""
    import yaml

    card = roles_card(name, version)
    card.parent.mkdir(parents=True, exist_ok=True)
    tmp = card.with_name(card.name + ".tmp")
    tmp.write_text(yaml.safe_dump({"columns": dict(sorted(roles.items()))}), encoding="utf-8")
    os.replace(tmp, card)
    return card


def _build_index(staging: Path, files: list[Path], name: str, version: str) -> Path:
    """Build the checks' source index (hashes, never data) for a new dataset version.

    Column roles: the provider's confirmed card if there is one, else a ``roles.yaml``
    shipped beside the data, else inferred (see cleanroom.checks.roles)."""
    from cleanroom.checks import build_source_index

    out = paths.index_dir() / name / version
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_source_index(
        files,
        out,
        name=name,
        progress=lambda msg: print(f"  index: {msg}", file=sys.stderr),
        roles=read_roles_card(name, version.removesuffix(".rebuilding")),
    )
    return out


def index_is_current(location: str | None) -> bool:
    """True when the index at ``location`` loads with this version of the checks."""
    from cleanroom.checks import CheckInputError, load_source_index

    if not location:
        return False
    try:
        load_source_index(Path(location))
    except CheckInputError:
        return False
    return True


def reindex_dataset(registry: Registry, name: str, version: str, *, actor: str) -> DatasetInfo:
    """Rebuild a registered version's index from the library copy, then swap it in.

    The old index keeps serving until the new one is complete, so a failure changes
    nothing; the library copy itself is read, never written.
    """
    info = registry.get_dataset(name, version)
    final = paths.index_dir() / name / version
    with at_rest.opened(info.location, info.name, info.version) as folder:
        files = [folder / path for path, _, _ in info.files]
        fresh = _build_index(folder, files, name, f"{version}.rebuilding")
    old = final.with_name(f"{version}.old")
    if final.exists():
        os.rename(final, old)
    os.rename(fresh, final)
    shutil.rmtree(old, ignore_errors=True)
    Governance(registry).set_index_location(name, version, str(final), actor=actor)
    return registry.get_dataset(name, version)


def set_column_roles(
    registry: Registry, dataset: str, version: str | None, roles: dict[str, str], *, actor: str
) -> dict[str, str]:
    """The provider's user ``actor`` confirms or corrects the roles of a dataset version's
    columns (direct identifier, quasi-identifier, contributor, measure, label, time).

    The roles are validated against the version's columns, kept beside its index and the
    index rebuilt with them (the old one serves until the new one is complete), and the
    change is journaled with the roles before and after. Returns the roles in force.
    """
    from cleanroom.checks import CheckInputError, load_source_index
    from cleanroom.checks.roles import RolesError, validate_roles

    governance = Governance(registry)
    d = registry.get_dataset(dataset, version)
    if d.provider not in governance.providers_of(actor):
        raise Forbidden(
            f"{actor!r} does not act for {d.provider!r}, the provider of dataset "
            f"{d.name} version {d.version}"
        )
    # A decision about the data: the provider's account in standing (second factor,
    # verified, trained, active), as their approvals of its use.
    governance.people.check_may_act(actor, "provider", what="set the roles of columns")
    name, version, index = d.name, d.version, d.index_location
    if not index:
        raise InvalidInput(f"{name} {version} has no source index: run datasets reindex")
    try:
        current = load_source_index(Path(index)).roles
        clean = validate_roles(roles, columns=set(current), where="roles")
    except (RolesError, CheckInputError) as exc:
        raise InvalidInput(str(exc)) from exc
    before = read_roles_card(name, version) or {}
    confirmed = {**current, **before, **clean}
    card = write_roles_card(name, version, confirmed)
    try:
        reindex_dataset(registry, name, version, actor=actor)
    except Exception:
        # Nothing changes on a failed rebuild: the old card comes back.
        if before:
            write_roles_card(name, version, before)
        else:
            card.unlink(missing_ok=True)
        raise
    governance.record(
        DatasetRolesSet(
            actor=actor,
            dataset=name,
            version=version,
            changed={c: r for c, r in clean.items() if current.get(c) != r},
            before={c: current.get(c) for c in clean},
        ),
        actor=actor,
    )
    return confirmed
