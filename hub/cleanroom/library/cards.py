"""A dataset version's card exported in the field's two metadata standards: MLCommons'
Croissant 1.0 (JSON-LD, its shape checked here) and a Frictionless Data Package
descriptor (built and checked with ``frictionless``).

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


CROISSANT = "http://mlcommons.org/croissant/1.0"
"""The Croissant version the cards conform to."""
CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
"""The Croissant 1.0 JSON-LD context (the specification's, as its reference library
writes it)."""
_CROISSANT_TYPES = {
    "integer": "sc:Integer",
    "number": "sc:Float",
    "boolean": "sc:Boolean",
    "date": "sc:Date",
    "datetime": "sc:DateTime",
    "time": "sc:Time",
}


def _croissant_type(table_type: str) -> str:
    return _CROISSANT_TYPES.get(table_type, "sc:Text")


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
    """The card as Croissant 1.0 JSON-LD (``url``: the version's catalogue page), its
    shape checked (:func:`check_croissant`): an error in it raises InvalidInput.

    Written here rather than with ``mlcroissant``, whose install brings ``pandas-stubs``
    along, which retypes every use of pandas in the project (docs/library.md)."""
    cols = columns(card, roles)
    record_sets = []
    for path, _, _ in card.files:
        if not is_table(path) or not cols:
            continue
        rs_id = "records/" + re.sub(r"[^A-Za-z0-9_.-]", "_", path)
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": rs_id,
                "name": path,
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"{rs_id}/{c['name']}",
                        "name": c["name"],
                        "description": _field_text(c),
                        "dataType": _croissant_type(c["type"]),
                        "source": {
                            "fileObject": {"@id": path},
                            "extract": {"column": c["name"]},
                        },
                    }
                    for c in cols
                ],
            }
        )
    document: dict[str, Any] = {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "name": card.name,
        "description": _description(card),
        "conformsTo": CROISSANT,
        "citeAs": f"{card.provider}, {card.name} version {card.version}",
        "creator": {"@type": "sc:Organization", "name": card.provider},
        "license": card.licence or "terms of the provider's data agreement",
        "url": url,
        "version": card.version,
        "keywords": [card.classification],
        "distribution": [
            {
                "@type": "cr:FileObject",
                "@id": path,
                "name": path,
                "contentSize": f"{size} B",
                "contentUrl": path,
                "encodingFormat": _media(path),
                "sha256": sha,
            }
            for path, size, sha in card.files
        ],
        "recordSet": record_sets,
    }
    if card.registered_at:
        document["datePublished"] = card.registered_at.date().isoformat()
    problems = check_croissant(document)
    if problems:
        raise InvalidInput(f"the Croissant card of {card.name} {card.version}: {problems[0]}")
    return document


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_croissant(document: dict[str, Any]) -> list[str]:
    """What is wrong with a Croissant dataset document (empty: nothing): the properties
    Croissant 1.0 requires, unique ``@id`` values, a sha256 on every file object, and every
    field's source naming a file object of the document."""
    problems: list[str] = []
    if document.get("@type") != "sc:Dataset":
        problems.append("@type must be sc:Dataset")
    if document.get("conformsTo") != CROISSANT:
        problems.append(f"conformsTo must be {CROISSANT}")
    for key in ("@context", "name", "description", "license", "url", "distribution"):
        if not document.get(key):
            problems.append(f"{key} is required")
    ids: list[str] = []
    files: set[str] = set()
    for f in document.get("distribution", []):
        ids.append(f.get("@id", ""))
        files.add(f.get("@id", ""))
        if f.get("@type") != "cr:FileObject" or not f.get("contentUrl"):
            problems.append(f"file object {f.get('@id')!r} needs @type and contentUrl")
        if not _SHA256.match(str(f.get("sha256", ""))):
            problems.append(f"file object {f.get('@id')!r} needs a sha256")
    for rs in document.get("recordSet", []):
        ids.append(rs.get("@id", ""))
        for field in rs.get("field", []):
            ids.append(field.get("@id", ""))
            source = field.get("source", {}).get("fileObject", {}).get("@id")
            if source not in files:
                problems.append(f"field {field.get('@id')!r} reads {source!r}, no file object")
            if not str(field.get("dataType", "")).startswith("sc:"):
                problems.append(f"field {field.get('@id')!r} needs a dataType")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates or "" in ids:
        problems.append(f"@id values must be present and unique: {duplicates or ['']}")
    return problems


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
