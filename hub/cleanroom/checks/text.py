"""Checks on free text: personal identifiers, source identifiers, model summaries.

Used on text files and on the text inside notebooks, tables and SVG files. Patterns use
bounded repetition only, so a hostile megabyte-long line costs linear time.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.checks.types import CheckContext, Finding, Verdict

#: Personal identifier patterns (name -> regular expression, RE2 and Python compatible).
PERSONAL_PATTERNS: dict[str, str] = {
    "email address": (
        r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"
    ),
    # International numbers (+44 20 7946 0958, 0049-30-1234567) and North American ones
    # ((555) 123-4567, 555-123-4567); plain digit runs are left alone because counts,
    # ids and timestamps look the same.
    "phone number": (
        r"(\+|\b00)[1-9]\d{0,2}[ .-]?(\(\d{1,4}\)[ .-]?)?\d{1,4}([ .-]\d{2,5}){1,4}\b"
        r"|\(\d{3}\) ?\d{3}-\d{4}\b|\b\d{3}-\d{3}-\d{4}\b"
        # National numbers written in groups: a trunk 0 then a non-zero digit (0161 496
        # 0783, 07700 900123, 030-1234-5678); zero-padded ids have no such grouping.
        r"|\b0[1-9]\d{1,3}[ -]\d{3,4}[ -]\d{3,4}\b|\b0[1-9]\d{3}[ -]\d{6}\b"
    ),
    "US social security number": r"\b\d{3}-\d{2}-\d{4}\b",
    "UK national insurance number": (
        r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
    ),
    "IBAN": r"\b[A-Z]{2}\d{2} ?([A-Z0-9]{4} ?){2,7}[A-Z0-9]{1,4}\b",
}
_COMPILED = {name: re.compile(p) for name, p in PERSONAL_PATTERNS.items()}
_ANY = "|".join(f"(?:{p})" for p in PERSONAL_PATTERNS.values())

_DOF_PATTERNS = (
    re.compile(r"Df Residuals:\s{0,40}(\d{1,12})"),  # statsmodels summary()
    re.compile(r"on (\d{1,12}) degrees of freedom"),  # R's summary.lm
    re.compile(r"\bdf_resid(?:ual)?s?\s{0,5}[=:]\s{0,5}(\d{1,12})"),
)
_TOKEN = re.compile(r"[^\s,;:()\[\]{}<>\"'|=/\\]{1,200}")


def personal_hits(values: Sequence[str], limit: int = 20) -> dict[str, list[str]]:
    """The values that contain a personal identifier, by pattern name (at most ``limit``)."""
    if len(values) == 0:
        return {}
    arr = pa.array(values, type=pa.large_string())
    mask = pc.match_substring_regex(arr, _ANY).to_numpy(zero_copy_only=False)
    hits: dict[str, list[str]] = {}
    for value in np.asarray(values, dtype=object)[np.asarray(mask, dtype=bool)]:
        for name, pattern in _COMPILED.items():
            found = pattern.search(value)
            if found and len(hits.setdefault(name, [])) < limit:
                hits[name].append(found.group(0))
    return {k: v for k, v in hits.items() if v}


def residual_dofs(text: str) -> list[int]:
    """Residual degrees of freedom printed in model summaries within ``text``."""
    return [int(m.group(1)) for p in _DOF_PATTERNS for m in p.finditer(text)]


def _ngram_blocks(text: str, longest: int, block_tokens: int = 50_000) -> Iterator[list[str]]:
    """Distinct 1..``longest``-word phrases of ``text`` (and each pair of words the other
    way round), a block of tokens at a time, so that memory stays bounded on long
    files."""
    tokens = [t.strip(".").lower() for t in _TOKEN.findall(text)]
    tokens = [t for t in tokens if t]
    for start in range(0, max(len(tokens), 1), block_tokens):
        # Overlap blocks by ``longest`` tokens so no phrase is cut at a boundary.
        block = tokens[start : start + block_tokens + longest - 1]
        grams = set()
        for n in range(1, longest + 1):
            for i in range(len(block) - n + 1):
                grams.add(" ".join(block[i : i + n]))
        if longest >= 2:
            # Names are also written family name first ("Kowalski, Olga").
            grams.update(f"{b} {a}" for a, b in itertools.pairwise(block))
        yield sorted(grams)


def check_text(text: str, context: CheckContext, *, location: str = "") -> list[Finding]:
    """Findings on free text; no finding means nothing was recognised, not "safe"."""
    findings: list[Finding] = []
    limit = context.policy.tables.max_evidence_items
    lines = text.splitlines() or [text]
    hits = personal_hits(lines, limit)
    for name, examples in hits.items():
        findings.append(
            Finding(
                "identifiers.personal",
                Verdict.FAIL,
                f"text contains what looks like a {name}",
                {"pattern": name, "examples": examples},
                location,
            )
        )
    for source in context.sources:
        found: list[str] = []
        for grams in _ngram_blocks(text, source.identifier_max_words):
            if not grams:
                continue
            mask = source.identifier_hits(np.asarray(grams, dtype=object))
            found += [g for g, m in zip(grams, mask, strict=True) if m]
            if len(found) >= limit:
                break
        if found:
            findings.append(
                Finding(
                    "identifiers.source",
                    Verdict.FAIL,
                    "text names values of the source's identifier columns "
                    f"({', '.join(sorted(source.identifier_columns))})",
                    {"values": found[:limit], "dataset": source.name},
                    location,
                )
            )
    threshold = context.policy.tables.min_residual_dof
    low = [d for d in residual_dofs(text) if d < threshold]
    if low:
        findings.append(
            Finding(
                "statistics.residual_dof",
                Verdict.FAIL,
                f"a model summary shows residual degrees of freedom below {threshold}",
                {"residual_dof": low[:limit], "threshold": threshold},
                location,
            )
        )
    return findings


# Counts written in prose: "n = 4", "count: 3", "(N=7)", "only 3 cycles", "4 operators".
_COUNT_PHRASE = re.compile(
    r"(?<![\w.])(?:n|N|count|counts|freq|frequency)\s{0,3}[=:]\s{0,3}(\d{1,9})(?![\w.])"
    r"|(?<![\w.,])(\d{1,9})\s{1,3}(?:of the\s{1,3})?(records?|rows?|observations?|cases?|"
    r"people|persons?|individuals?|employees?|operators?|workers?|staff|customers?|"
    r"suppliers?|companies|firms?|patients?|respondents?|units?|items?|parts?|packs?|"
    r"trays?|cycles?|shots?|strokes?|deliveries|delivery|lots?|batches|batch|defects?|"
    r"leaks?|rejects?|failures?|faults?|events?|incidents?|samples?|subjects?)\b",
)


def small_counts_in_text(text: str, threshold: int, limit: int = 20) -> list[str]:
    """Phrases of ``text`` that state a count between 1 and ``threshold - 1``."""
    found: list[str] = []
    for match in _COUNT_PHRASE.finditer(text[:5_000_000]):
        number = match.group(1) or match.group(2)
        if number is not None and 0 < int(number) < threshold:
            found.append(match.group(0).strip())
            if len(found) >= limit:
                break
    return found


def check_text_numbers(text: str, context: CheckContext, *, location: str = "") -> list[Finding]:
    """Counts stated in prose that are below the policy's threshold."""
    threshold = context.policy.tables.min_cell_count
    found = small_counts_in_text(text, threshold, context.policy.tables.max_evidence_items)
    if not found:
        return []
    return [
        Finding(
            "text.small_counts",
            Verdict.FAIL,
            f"the text states {len(found)} counts below {threshold}: " + "; ".join(found[:5]),
            {"phrases": found, "threshold": threshold},
            location,
        )
    ]
