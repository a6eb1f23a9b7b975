"""What one answer costs to send and to read, against plain JSON of the same content.

The answer is the police adapter's real answer to the seeds' first case study (the
17-year-old after a drugs warrant): incidents, call-outs, the adult posing risk, and a
restricted intelligence item sealed for the restricted file.

- **send** = seal the restricted findings (X25519 + HKDF + AES-256-GCM), build the response,
  Avro-encode it (findings nested as a single-object record), sign (SHA-256 + Ed25519);
- **receive** = verify the signature, decode the response and its findings, open the
  restricted findings (as the restricted-file officer does) and decode them;
- **JSON** = ``json.dumps`` / ``json.loads`` of the same content with everything in clear.

The matching (the adapter's lookup) is not part of the message cost and is done once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.kit.service import response_id_for
from adapters.police import PoliceAgency
from bench.workload import BenchKeys
from broker.keyring import RESTRICTED_OWNER, Keyring, default_restricted_dir, load_private_key
from broker.sealed import open_sealed, seal
from broker.signing import Verifier, signer_for
from hub.intake import load_contact_file
from mash.demo import CASE_RERATED, EXAMPLES
from schemas.codec import decode, encode
from schemas.enums import ResponseOutcome
from schemas.models import (
    AgencyResponse,
    InformationRequest,
    PoliceFindings,
    RestrictedFindings,
)

__all__ = ["CostResult", "measure_cost"]

_POLICE = frozenset({"police"})


@dataclass(frozen=True)
class CostResult:
    """Microseconds per operation (the median of several timed rounds) and sizes."""

    micros: dict[str, float]
    avro_bytes: int
    json_bytes: int


def _time(operation: Callable[[], object], iterations: int, rounds: int = 5) -> float:
    per_round = max(1, iterations // rounds)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(per_round):
            operation()
        samples.append((time.perf_counter() - started) / per_round * 1e6)
    return sorted(samples)[len(samples) // 2]


def measure_cost(keys: BenchKeys, iterations: int = 2000) -> CostResult:
    keyring = Keyring.load(keys.keyring)
    signer = signer_for(keyring, keys.key_dir, "police")
    verifier = Verifier(keyring)
    restricted_key = keyring.current(RESTRICTED_OWNER, "restricted")
    recipient = restricted_key.x25519()
    private = load_private_key(default_restricted_dir(keys.key_dir), restricted_key.key_id)
    if not isinstance(private, X25519PrivateKey):
        raise RuntimeError(f"{restricted_key.key_id} is not the restricted file's X25519 key")

    contact = load_contact_file(EXAMPLES / CASE_RERATED)  # the drugs-warrant case study
    now = datetime.now(UTC)
    request = InformationRequest(
        request_id=str(uuid.uuid4()),
        contact_ref="MASH-2026-000001",
        agency="police",
        brag=contact.brag,
        deadline=now + timedelta(hours=4),
        issued_at=now,
        concerns_summary=contact.concerns_summary,
        consent=contact.consent,
        lawful_basis=contact.lawful_basis,
        subjects=contact.subjects,
    )
    lookup = PoliceAgency().lookup(request)
    if not (lookup.known and lookup.restricted and lookup.findings is not None):
        raise RuntimeError("the case study no longer brings back restricted police findings")
    response_id = response_id_for(request.request_id, "police")
    restricted_plain = encode(RestrictedFindings(items=lookup.restricted))
    findings_bytes = encode(lookup.findings)

    def do_seal() -> Any:
        return seal(
            restricted_plain,
            recipient,
            restricted_key.key_id,
            contact_ref=request.contact_ref,
            agency="police",
            response_id=response_id,
        )

    def build(envelope: Any) -> AgencyResponse:
        return AgencyResponse(
            response_id=response_id,
            request_id=request.request_id,
            contact_ref=request.contact_ref,
            agency="police",
            responded_at=now,
            outcome=ResponseOutcome.KNOWN,
            matches=lookup.matches,
            strengths=lookup.strengths,
            engagement=lookup.engagement,
            engagement_notes=lookup.engagement_notes,
            findings=findings_bytes,
            restricted=envelope,
        )

    envelope = do_seal()
    response = build(envelope)
    body = encode(response)
    headers = signer.headers(response_id, response.avro_name, body)

    def send() -> tuple[bytes, dict[str, str]]:
        sent = encode(build(do_seal()))
        return sent, signer.headers(response_id, AgencyResponse.avro_name, sent)

    def do_open(read: AgencyResponse) -> RestrictedFindings:
        assert read.restricted is not None
        plain = open_sealed(
            read.restricted,
            private,
            contact_ref=read.contact_ref,
            agency=read.agency,
            response_id=read.response_id,
        )
        return decode(plain, RestrictedFindings)

    def receive() -> None:
        verifier.verify(headers, response_id, AgencyResponse.avro_name, body, _POLICE)
        read = decode(body, AgencyResponse)
        decode(read.findings or b"", PoliceFindings)
        do_open(read)

    # The same content in clear, as a team without the contracts would send it.
    content = response.model_copy(update={"findings": None, "restricted": None}).model_dump(
        mode="json"
    )
    content["findings"] = lookup.findings.model_dump(mode="json")
    content["restricted"] = [item.model_dump(mode="json") for item in lookup.restricted]
    as_json = json.dumps(content).encode()

    micros = {
        "seal": _time(do_seal, iterations),
        "encode": _time(lambda: encode(build(envelope)), iterations),
        "sign": _time(lambda: signer.headers(response_id, response.avro_name, body), iterations),
        "send": _time(send, iterations),
        "verify": _time(
            lambda: verifier.verify(headers, response_id, response.avro_name, body, _POLICE),
            iterations,
        ),
        "decode": _time(
            lambda: decode(decode(body, AgencyResponse).findings or b"", PoliceFindings),
            iterations,
        ),
        "open": _time(lambda: do_open(response), iterations),
        "receive": _time(receive, iterations),
        "json_dumps": _time(lambda: json.dumps(content).encode(), iterations),
        "json_loads": _time(lambda: json.loads(as_json), iterations),
    }
    micros["round_trip"] = micros["send"] + micros["receive"]
    micros["json_round_trip"] = micros["json_dumps"] + micros["json_loads"]
    return CostResult(micros=micros, avro_bytes=len(body), json_bytes=len(as_json))
