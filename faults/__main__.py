"""``python -m faults``: run every fault class and print one table (``make faults``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from broker.logs import configure_logging
from faults.scenarios import SCENARIOS
from faults.verdict import Verdict, table


async def _run(names: list[str], contacts: int, workdir: Path) -> list[Verdict]:
    verdicts = []
    for scenario in SCENARIOS:
        if names and scenario.name not in names:
            continue
        print(f"running {scenario.name} with {contacts} contacts ...", file=sys.stderr, flush=True)
        verdicts.append(await scenario.run(contacts, workdir))
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--contacts", type=int, default=500, help="contacts per fault class")
    parser.add_argument("--only", action="append", default=[], help="run only this class")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    known = {s.name for s in SCENARIOS}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        parser.error(f"unknown fault class {unknown[0]!r}; known: {', '.join(sorted(known))}")
    configure_logging(json=True, level="WARNING")
    workdir = Path(tempfile.mkdtemp(prefix="mash-faults-"))
    verdicts = asyncio.run(_run(args.only, args.contacts, workdir))
    if args.json:
        print(json.dumps([v.as_dict() for v in verdicts], indent=2))
    else:
        print(table(verdicts))
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
