"""``tuneloop data redact IN -o OUT``: replace personal data and secrets in a JSONL file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli._common import fail, out

_SHOWN = ("email", "phone", "iban", "credit_card", "ip_address", "api_key")


def redact(
    in_path: Annotated[Path, typer.Argument(metavar="IN", help="JSONL file of canonical records.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the redacted JSONL (may be IN itself).")],
    kinds: Annotated[str | None, typer.Option("--kinds", help="Comma-separated kinds to redact: email, phone, iban, credit_card, ip_address, api_key (default: all).")] = None,
) -> None:
    """Replace emails, phone numbers, IBANs, card numbers, IP addresses and API keys with [REDACTED_<KIND>]."""
    from tuneloop.data.io import DataError
    from tuneloop.data.pii import PII_KINDS
    from tuneloop.data.redact import redact_file

    wanted = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else list(PII_KINDS)
    unknown = [k for k in wanted if k not in PII_KINDS]
    if unknown or not wanted:
        fail(f"unknown --kinds {', '.join(unknown) or '(none given)'}; choose from {', '.join(PII_KINDS)}")
    try:
        result = redact_file(in_path, output, wanted)
    except DataError as exc:
        fail(str(exc))
    out.print(f"redacted {in_path} -> {output}: {result.records} records", highlight=False)
    table = Table("kind", "redacted")
    for kind in _SHOWN:
        if kind in wanted:
            table.add_row(kind, str(result.matches_by_kind.get(kind, 0)))
    out.print(table)
