"""The screening view shows findings of an agency that mash-hub has no model for (one added
by a separate package through ``mash.schemas``), from its registered schema."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import pytest

import schemas.registry
from mash.screening import _findings_lines, decode_findings
from schemas.registry import SCHEMA_DIR, SchemaRegistry

PROBATION = {
    "type": "record",
    "name": "ProbationFindings",
    "namespace": "uk.mash",
    "fields": [
        {"name": "under_supervision", "type": "boolean"},
        {"name": "order_type", "type": ["null", "string"], "default": None},
    ],
}


@pytest.fixture
def registry_with_probation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SchemaRegistry:
    (tmp_path / "uk.mash.ProbationFindings.avsc").write_text(json.dumps(PROBATION))
    registry = SchemaRegistry()
    registry.add_files(
        [*sorted(SCHEMA_DIR.glob("*.avsc")), tmp_path / "uk.mash.ProbationFindings.avsc"]
    )
    monkeypatch.setattr(schemas.registry, "_DEFAULT", registry)
    return registry


def test_findings_without_a_model_are_shown_from_their_schema(
    registry_with_probation: SchemaRegistry,
) -> None:
    entry = registry_with_probation.current("uk.mash.ProbationFindings")
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, entry.parsed, {"under_supervision": True, "order_type": "Community order"}
    )
    data = b"\xc3\x01" + entry.fingerprint + body.getvalue()

    findings = decode_findings(data)

    assert findings == {"under_supervision": True, "order_type": "Community order"}
    assert _findings_lines(findings) == ["under supervision: True", "order type: Community order"]


def test_unreadable_findings_show_nothing(registry_with_probation: SchemaRegistry) -> None:
    assert decode_findings(b"\xc3\x01" + b"\x00" * 8 + b"junk") is None
