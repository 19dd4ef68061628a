"""Column roles: what each column of a dataset version is, as its provider declares it.

Every column of a registered dataset version has one role, and the checks use the
roles, not name heuristics, wherever they exist:

``direct_identifier``
    names a person (a name, an e-mail address, a personal id): never released, its
    values never shown.
``quasi_identifier``
    identifies a person in combination (a shift with a badge number, a postcode): not
    released at record level; tables grouped by it are held to the threshold rule.
``contributor``
    the unit whose share dominance rules protect (a supplier, a customer, a plant):
    the p% and (n, k) rules are computed on each contributor's total within a cell,
    across all of its records, not on single records.
``measure``
    a magnitude that tables sum or average (a weight, a cycle time, a cost).
``label``
    a category or a code: a machine, a mould, a resin grade, an hour of the day.
``time``
    a timestamp or a date.

:func:`infer_roles` gives a default from names and values that the provider confirms
or corrects (``cleanroom datasets roles``); the declared roles are kept with the
dataset version (a ``roles.yaml`` card beside it) and in its source index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

ROLES = ("direct_identifier", "quasi_identifier", "contributor", "measure", "label", "time")

#: The file beside a dataset version that holds its declared roles.
ROLES_FILE = "roles.yaml"

# Words that name a person, in a column name ("operator_name", "email", "badge_no").
_PERSON_WORDS = {
    "name",
    "names",
    "firstname",
    "lastname",
    "surname",
    "fullname",
    "email",
    "mail",
    "phone",
    "mobile",
    "telephone",
    "address",
    "postcode",
    "zip",
    "ssn",
    "nino",
    "passport",
    "dob",
    "birth",
    "badge",
}
# Who a personal id belongs to ("operator_id", "employee_no"): people, not things.
_PERSON_NOUNS = {
    "operator",
    "employee",
    "worker",
    "person",
    "staff",
    "technician",
    "inspector",
    "user",
    "patient",
    "driver",
    "author",
    "contact",
    "engineer",
    "member",
}
# The units dominance rules protect: businesses that contribute records.
_CONTRIBUTOR_NOUNS = {
    "supplier",
    "vendor",
    "customer",
    "client",
    "company",
    "plant",
    "site",
    "manufacturer",
    "firm",
    "enterprise",
    "business",
    "shipper",
    "carrier",
}
_TIME_WORDS = {"time", "timestamp", "date", "datetime", "ts", "at", "when"}
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,24}$")


class RolesError(ValueError):
    """Roles that cannot be used; the message names the column and the fix."""


def _words(name: str) -> set[str]:
    return {w for w in re.split(r"[^0-9a-z]+", name.lower()) if w}


def infer_role(name: str, values: pd.Series) -> str:
    """The default role of one column, from its name and values (the provider confirms).

    People are identified by what names them (names, e-mail addresses, personal ids);
    machines, moulds, lots and lines are labels however their ids look, because their
    counts are not about a person. Businesses named as suppliers, customers or plants
    are contributors.
    """
    words = _words(name)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "time"
    is_text = not (
        pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
    )
    sample = values.dropna().astype("str").head(2000) if is_text else pd.Series([], dtype="str")
    if len(sample) and sample.str.match(_EMAIL.pattern).mean() > 0.5:
        return "direct_identifier"
    # "resin_name" or "grade_name" is a label; a name column of people is not.
    things = {"resin", "grade", "product", "material", "part", "machine", "mould", "mold"}
    if words & _PERSON_WORDS and is_text and not words & things:
        return "direct_identifier"
    if words & _PERSON_NOUNS:
        return "direct_identifier" if is_text or words & {"id", "no", "number"} else "label"
    if words & _CONTRIBUTOR_NOUNS:
        return "contributor"
    if is_text and len(sample):
        if sample.str.match(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2})?").mean() > 0.95:
            return "time"
        return "label"
    if words & _TIME_WORDS and not words & {"cycle", "s", "sec", "ms", "min", "h"}:
        return "time" if not pd.api.types.is_float_dtype(values.dtype) else "measure"
    if pd.api.types.is_bool_dtype(values.dtype):
        return "label"
    if pd.api.types.is_integer_dtype(values.dtype) and values.nunique() <= 60:
        return "label"
    return "measure"


def infer_roles(frame: pd.DataFrame) -> dict[str, str]:
    """Default roles for every column of ``frame`` (see :func:`infer_role`)."""
    return {str(c): infer_role(str(c), frame[c]) for c in frame.columns}


def validate_roles(
    roles: Any, columns: set[str] | None = None, where: str = "roles"
) -> dict[str, str]:
    """``roles`` as a clean ``{column: role}`` mapping, or :class:`RolesError`.

    ``columns``, when given, are the dataset's columns (normalised): a role for a column
    the dataset does not have is refused, naming it.
    """
    from cleanroom.checks.source_index import normalise_name

    if not isinstance(roles, Mapping):
        raise RolesError(f"{where}: must map column names to roles ({', '.join(ROLES)})")
    clean: dict[str, str] = {}
    for column, role in roles.items():
        name = normalise_name(column)
        if not name:
            raise RolesError(f"{where}: an empty column name")
        if not isinstance(role, str) or role.strip().lower() not in ROLES:
            raise RolesError(
                f"{where}.{column}: unknown role {role!r}; use one of {', '.join(ROLES)}"
            )
        if columns is not None and name not in columns:
            raise RolesError(
                f"{where}.{column}: the dataset has no such column; it has "
                f"{', '.join(sorted(columns))}"
            )
        clean[name] = role.strip().lower()
    return clean


def parse_role_assignments(items: list[str]) -> dict[str, str]:
    """``["supplier=contributor", "mould_id=label"]`` (the command line) as a mapping."""
    out: dict[str, str] = {}
    for item in items:
        column, sep, role = item.partition("=")
        if not sep or not column.strip() or not role.strip():
            raise RolesError(f"{item!r}: write COLUMN=ROLE, e.g. supplier=contributor")
        out[column.strip()] = role.strip()
    return out
