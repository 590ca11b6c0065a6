"""What a data check reports: findings with a check id, a severity and file:line."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class CheckInfo:
    """A check users can see and re-grade in config (``severities: {id: error}``)."""

    id: str
    severity: Severity
    description: str


@dataclass
class Finding:
    check: str
    severity: Severity
    file: str
    line: int | None
    message: str
    field: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass
class Report:
    """All findings of a validation run, plus the statistics checks computed."""

    checks: dict[str, CheckInfo] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    records: int = 0

    def add(self, check: CheckInfo, file: str, line: int | None, message: str,
            field: str | None = None, severities: dict[str, Severity] | None = None) -> None:  # fmt: skip
        """Record a finding of ``check`` (severity re-graded by ``severities`` if given)."""
        self.checks.setdefault(check.id, check)
        severity = (severities or {}).get(check.id, check.severity)
        self.findings.append(Finding(check.id, severity, file, line, message, field))

    def register(self, *checks: CheckInfo) -> None:
        """Make checks appear in the summary even when they find nothing."""
        for c in checks:
            self.checks.setdefault(c.id, c)

    @property
    def ok(self) -> bool:
        """True when no error-severity finding exists."""
        return not any(f.severity == "error" for f in self.findings)

    def summary(self) -> list[dict[str, Any]]:
        """One row per check: id, severity, count, first locations."""
        counts = Counter(f.check for f in self.findings)
        rows = []
        for cid, info in self.checks.items():
            found = [f for f in self.findings if f.check == cid]
            severity = found[0].severity if found else info.severity
            rows.append({
                "check": cid, "severity": severity, "count": counts.get(cid, 0),
                "status": "pass" if not found else ("FAIL" if severity == "error" else "warn"),
                "description": info.description,
                "locations": [f.where for f in found],
            })  # fmt: skip
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "summary": self.summary(),
            "findings": [asdict(f) for f in self.findings],
            "stats": self.stats,
        }
