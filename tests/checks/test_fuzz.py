"""Mutated and truncated files: the checks never raise, never hang, never pass them
unexamined, and classify the damage instead of reporting an internal error."""

from __future__ import annotations

import random
import time

import pandas as pd
import pytest
from cleanroom.checks import CheckContext, check_bytes

from tests.checks.corpus import Sample, build_corpus


@pytest.fixture(scope="module")
def samples(source_frame: pd.DataFrame) -> list[Sample]:
    return [s for s in build_corpus(source_frame) if len(s.data) < 1_000_000]


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    out = []
    for trial in range(6):
        b = bytearray(data)
        if trial % 3 == 0 and len(b) > 2:
            b = b[: rng.randrange(1, len(b))]
        elif trial % 3 == 1:
            for _ in range(rng.randint(1, 20)):
                if b:
                    b[rng.randrange(len(b))] = rng.randrange(256)
        else:
            at = rng.randrange(len(b) + 1)
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 50)))
        out.append(bytes(b))
    return out


def test_damaged_files(samples: list[Sample], context: CheckContext) -> None:
    rng = random.Random(20261121)
    internal = []
    slowest = 0.0
    for sample in samples:
        for data in _mutations(sample.data, rng):
            start = time.monotonic()
            report = check_bytes(data, sample.name, context)
            slowest = max(slowest, time.monotonic() - start)
            assert report.findings, sample.name
            internal += [
                (sample.name, f.message) for f in report.findings if f.rule == "check.error"
            ]
    assert slowest < 10
    assert internal == []


def test_damaged_outputs_of_the_second_dataset(
    packaging_frames: tuple[pd.DataFrame, pd.DataFrame], packaging_context: CheckContext
) -> None:
    from cleanroom.checks.request import check_request

    from tests.checks.packaging_corpus import build

    rng = random.Random(20261201)
    internal = []
    damaged: list[tuple[str, bytes]] = []
    for sample in build(*packaging_frames):
        for data in _mutations(sample.data, rng)[::2]:
            report = check_bytes(data, sample.name, packaging_context)
            assert report.findings, sample.name
            internal += [
                (sample.name, f.message) for f in report.findings if f.rule == "check.error"
            ]
            damaged.append((sample.name, data))
    assert internal == []
    # The request-level checks read the same damaged files without raising.
    result = check_request(damaged[:60], packaging_context)
    assert len(result.files) == len({name for name, _ in damaged[:60]})
