"""A dataset version's card exported in the field's two metadata standards: MLCommons'
Croissant (JSON-LD, built and checked with ``mlcroissant``) and a Frictionless Data
Package descriptor (built and checked with ``frictionless``).

Both describe the version: provider, description, licence, classification, files with
sizes and sha256 checksums, columns with types and declared roles, and the quality
summary. Neither holds any of the data, and the file URLs are paths inside the library,
which nobody downloads: the data is used only inside the clean room.
"""

from __future__ import annotations

import re
from typing import Any

from cleanroom.errors import InvalidInput
from cleanroom.library.catalogue import CardInfo
from cleanroom.library.quality import is_table

_MEDIA = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".parquet": "application/x-parquet",
}


def columns(card: CardInfo, roles: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The version's columns (name, type, role, description, constraints): from the
    provider's Table Schema when there is one, else from the profile's inferred types."""
    roles = roles or {}
    out: list[dict[str, Any]] = []
    if card.table_schema:
        for f in card.table_schema.get("fields", []):
            out.append(
                {
                    "name": f["name"],
                    "type": f.get("type", "any"),
                    "description": f.get("description", ""),
                    "constraints": f.get("constraints", {}),
                    "role": roles.get(f["name"], ""),
                }
            )
        return out
    seen: set[str] = set()
    for table in card.quality.get("tables", []):
        for c in table.get("columns", []):
            if c["name"] not in seen:
                seen.add(c["name"])
                out.append(
                    {
                        "name": c["name"],
                        "type": c.get("type", "any"),
                        "description": "",
                        "constraints": {},
                        "role": roles.get(c["name"], ""),
                    }
                )
    return out


def _media(path: str) -> str:
    for suffix, media in _MEDIA.items():
        if path.lower().endswith(suffix):
            return media
    return "application/octet-stream"


def _croissant_type(table_type: str) -> Any:
    import mlcroissant as mlc

    return {
        "integer": mlc.DataType.INTEGER,
        "number": mlc.DataType.FLOAT,
        "boolean": mlc.DataType.BOOL,
        "date": mlc.DataType.DATE,
        "datetime": mlc.DataType.DATETIME,
        "time": mlc.DataType.TIME,
    }.get(table_type, mlc.DataType.TEXT)


def _field_text(c: dict[str, Any]) -> str:
    parts = [c["description"]] if c["description"] else []
    if c["role"]:
        parts.append(f"role: {c['role']}")
    return "; ".join(parts) or c["name"]


def _description(card: CardInfo) -> str:
    summary = card.quality.get("summary", {})
    return (
        f"{card.description or card.name} -- provider: {card.provider}; classification: "
        f"{card.classification}; quality: {card.status} ({summary.get('rows', 0)} rows, "
        f"{summary.get('errors', 0)} errors against the "
        f"{summary.get('schema', 'inferred')} schema)"
    )


def croissant(card: CardInfo, *, url: str, roles: dict[str, str] | None = None) -> dict[str, Any]:
    """The card as Croissant JSON-LD (``url``: the version's catalogue page), checked by
    mlcroissant: an error in it raises InvalidInput."""
    import mlcroissant as mlc

    files = [
        mlc.FileObject(
            id=path,
            name=path,
            content_url=path,
            content_size=f"{size} B",
            encoding_formats=[_media(path)],
            sha256=sha,
        )
        for path, size, sha in card.files
    ]
    cols = columns(card, roles)
    record_sets = []
    for path, _, _ in card.files:
        if not is_table(path) or not cols:
            continue
        rs_id = "records/" + re.sub(r"[^A-Za-z0-9_.-]", "_", path)
        record_sets.append(
            mlc.RecordSet(
                id=rs_id,
                name=path,
                fields=[
                    mlc.Field(
                        id=f"{rs_id}/{c['name']}",
                        name=c["name"],
                        description=_field_text(c),
                        data_types=[_croissant_type(c["type"])],
                        source=mlc.Source(file_object=path, extract=mlc.Extract(column=c["name"])),
                    )
                    for c in cols
                ],
            )
        )
    metadata = mlc.Metadata(
        name=card.name,
        description=_description(card),
        url=url,
        license=[card.licence or "terms of the provider's data agreement"],
        version=card.version,
        cite_as=f"{card.provider}, {card.name} version {card.version}",
        date_published=card.registered_at.date().isoformat() if card.registered_at else None,
        creators=[mlc.Organization(name=card.provider)],
        distribution=files,
        record_sets=record_sets,
    )
    document: dict[str, Any] = metadata.to_json()
    try:
        # mlcroissant's own reading of the JSON-LD: what a consumer of the card will see.
        mlc.Dataset(jsonld=document)
    except mlc.ValidationError as exc:
        raise InvalidInput(f"the Croissant card of {card.name} {card.version}: {exc}") from exc
    return document


def _resource_name(path: str) -> str:
    return re.sub(r"[^a-z0-9._-]", "-", path.lower()).strip("-.") or "file"


def data_package(card: CardInfo, roles: dict[str, str] | None = None) -> dict[str, Any]:
    """The card as a Frictionless Data Package descriptor, checked by frictionless."""
    from frictionless import FrictionlessException, Package

    cols = columns(card, roles)
    resources = []
    for path, size, sha in card.files:
        resource: dict[str, Any] = {
            "name": _resource_name(path),
            "path": path,
            "bytes": size,
            "hash": f"sha256:{sha}",
            "mediatype": _media(path),
        }
        if is_table(path) and cols:
            schema = dict(card.table_schema) if card.table_schema else {}
            schema["fields"] = [
                {
                    "name": c["name"],
                    "type": c["type"],
                    "description": _field_text(c),
                    **({"constraints": c["constraints"]} if c["constraints"] else {}),
                }
                for c in cols
            ]
            resource["schema"] = schema
            resource["format"] = "tsv" if path.lower().endswith(".tsv") else "csv"
        resources.append(resource)
    descriptor = {
        "name": _resource_name(card.name),
        "title": card.name,
        "description": _description(card),
        "version": card.version,
        "licenses": [{"name": "other", "title": card.licence or "the provider's data agreement"}],
        "contributors": [{"title": card.provider, "role": "publisher"}],
        "keywords": [card.classification],
        "resources": resources,
    }
    try:
        package = Package.from_descriptor(descriptor)
    except FrictionlessException as exc:
        raise InvalidInput(
            f"the Data Package of {card.name} {card.version}: {exc.error.message}"
        ) from exc
    return dict(package.to_descriptor())
