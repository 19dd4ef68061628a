"""The data library's verbs of the ``cleanroom`` command: dataset cards (show, export as
Croissant or a Data Package), classification, accepting a quarantined version, and the
classification policy. The same domain code as the library's pages
(:mod:`cleanroom.library`, :class:`~cleanroom.registry.governance.Governance`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanroom.cli.identity import add_credential
from cleanroom.cli.output import emit, emit_rows
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance


def _decider(args: argparse.Namespace) -> str:
    from cleanroom.cli.identity import actor

    return actor(args, args.registry)


def roles_of(name: str, version: str, index_location: str | None) -> dict[str, str]:
    """The declared roles of a version's columns: the provider's confirmed card, else the
    disclosure-check index's (shipped or inferred); empty when neither is there."""
    from cleanroom.library.register import read_roles_card

    confirmed = read_roles_card(name, version)
    if confirmed:
        return confirmed
    if not index_location:
        return {}
    from cleanroom.checks import CheckInputError, load_source_index

    try:
        return dict(load_source_index(Path(index_location)).roles)
    except CheckInputError:
        return {}


def card_url(name: str, version: str) -> str:
    """The catalogue page of a version, as the card's ``url`` (the deployment's own)."""
    from cleanroom.settings import Settings

    base = Settings.from_env().public_url.rstrip("/")
    return f"{base}/services/library/datasets/{name}/{version}"


def datasets_card(args: argparse.Namespace, reg: Registry) -> None:
    """Print a version's card: as stored, as Croissant JSON-LD, or as a Data Package."""
    from cleanroom.library import cards
    from cleanroom.library.catalogue import get_card

    card = get_card(reg, args.dataset, args.version)
    roles = roles_of(
        card.name, card.version, reg.get_dataset(card.name, card.version).index_location
    )
    document: Any
    if args.format == "croissant":
        document = cards.croissant(card, url=card_url(card.name, card.version), roles=roles)
    elif args.format == "datapackage":
        document = cards.data_package(card, roles=roles)
    else:
        from cleanroom.cli.output import jsonable

        document = jsonable(card)
        document["columns"] = cards.columns(card, roles)
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def datasets_classify(args: argparse.Namespace, reg: Registry) -> None:
    """As the provider's user or an operator, set a version's classification."""
    before = Governance(reg).classify_dataset(
        args.dataset, args.version, args.classification, actor=_decider(args)
    )
    emit(
        args,
        {"dataset": args.dataset, "version": args.version, "before": before,
         "after": args.classification},
        f"{args.dataset} {args.version}: {before} -> {args.classification}",
    )  # fmt: skip


def datasets_accept(args: argparse.Namespace, reg: Registry) -> None:
    """As the provider's user, accept a quarantined version despite its report."""
    Governance(reg).accept_dataset_version(
        args.dataset, args.version, args.reason, actor=_decider(args)
    )
    emit(
        args,
        {"dataset": args.dataset, "version": args.version, "status": "accepted"},
        f"{args.dataset} {args.version} accepted: workspaces may mount it",
    )


def datasets_classifications(args: argparse.Namespace, reg: Registry) -> None:
    """List the classification policy: each category and the controls it needs."""
    from cleanroom.library.classification import load_policy

    policy = load_policy()
    emit_rows(
        args,
        list(policy.classifications.values()),
        lambda c: (
            f"{c.name}\tmin tier {c.min_tier}\taccess {c.access}\tco-review {c.co_review}\t"
            + ("no egress cap" if c.egress_per_day is None else f"egress <= {c.egress_per_day}")
        ),
    )


def add_register_options(p: Any) -> None:
    """The card options of ``datasets register``."""
    p.add_argument(
        "--schema", metavar="FILE", help="a Frictionless Table Schema (JSON or YAML) "
        "every table must meet; a version that fails it registers quarantined",
    )  # fmt: skip
    p.add_argument("--classification", help="default: the policy's (classification.yaml)")
    p.add_argument("--description", default="")
    p.add_argument("--licence", default="", help="licence or terms of use")


def register_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``register_dataset`` from the card options, with a
    progress line on stderr for the quality check."""
    from cleanroom.library.quality import load_schema

    def progress(name: str, rows: int) -> None:
        print(f"  quality: {name}: {rows} rows checked", file=sys.stderr, flush=True)

    return {
        "schema": load_schema(Path(args.schema)) if args.schema else None,
        "classification": args.classification,
        "description": args.description,
        "licence": args.licence,
        "quality_progress": progress,
    }


def add_library_verbs(datasets: Any, verb: Callable[..., Any]) -> None:
    """``datasets card|classify|accept|classifications``."""
    p = verb(
        datasets, "card", "show a version's card, or export it (Croissant, Data Package)",
        datasets_card,
    )  # fmt: skip
    p.add_argument("dataset")
    p.add_argument("--version", help="default: the newest version")
    p.add_argument("--format", choices=["card", "croissant", "datapackage"], default="card")
    p = verb(
        datasets, "classify", "as the provider or an operator, set a version's classification",
        datasets_classify,
    )  # fmt: skip
    p.add_argument("dataset")
    p.add_argument("version")
    p.add_argument("classification")
    add_credential(p)
    p = verb(
        datasets, "accept", "as the provider, accept a quarantined version despite its report",
        datasets_accept,
    )  # fmt: skip
    p.add_argument("dataset")
    p.add_argument("version")
    p.add_argument("--reason", required=True, help="why the version is acceptable")
    add_credential(p)
    verb(
        datasets, "classifications", "list the classifications and the controls each needs",
        datasets_classifications,
    )  # fmt: skip
