"""Personal data and secrets in text: find, redact, mask for display.

Kinds, each a regular expression for candidates plus a check that keeps false
positives low (a training set is full of numbers that are not phone numbers):

| kind | found when |
|---|---|
| ``email`` | ``local@domain.tld`` with an alphabetic TLD |
| ``phone`` | ``+`` and 8–15 digits; ``(area) local``; NANP ``555-123-4567`` (one separator kind); a national number starting with trunk ``0`` in separated groups (9–12 digits) |
| ``iban`` | country code, check digits, the country's exact length (ISO 13616 registry) and the mod-97 check |
| ``credit_card`` | 13–19 digits, plain or in 4-4-4-x / 4-6-5 groups, a card-network prefix and the Luhn check |
| ``ip_address`` | IPv4 with every octet 0–255 (not inside a longer dotted run, not after "version"); IPv6 as parsed by :mod:`ipaddress` |
| ``api_key`` | ``sk-…`` (OpenAI style), ``AKIA…``/``ASIA…`` (AWS), ``ghp_…``/``github_pat_…`` (GitHub), ``xox[baprs]-…`` (Slack), and the value of ``api_key=…``-like assignments or ``Bearer …`` headers |

Left alone on purpose: years, dates, prices, decimals, version numbers such as
``1.2.3.4.5``, ISBNs, order numbers and digit runs that fail their checksum.
Matches never overlap: where two kinds claim the same characters, the one earlier
in :data:`PII_KINDS` wins (``api_key``, ``email``, ``iban``, ``credit_card``,
``ip_address``, ``phone``), then the one that starts first.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from dataclasses import dataclass

PII_KINDS = ("api_key", "email", "iban", "credit_card", "ip_address", "phone")
"""All kinds, in the order they win overlaps."""


@dataclass(frozen=True)
class PiiMatch:
    """One finding: ``text[start:end] == value``."""

    kind: str
    start: int
    end: int
    value: str


_FLAGS = re.ASCII | re.VERBOSE

# --------------------------------------------------------------------- patterns

_EMAIL = re.compile(
    r"""(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}
        @(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])""",
    _FLAGS,
)

# Groups are separated by a mandatory separator (or a parenthesised area code), so a
# long digit run has one way to split and the regex cannot backtrack explosively.
_PHONE = re.compile(
    r"""(?<![\w+])(?<!\d[ .\-/])
    (?:
        (?P<intl>\+\d{1,3}[ .\-]?(?:\(\d{1,5}\)[ .\-]?)?\d{1,12}(?:[ .\-]\d{1,12}){0,5})
      | (?P<paren>\(\d{2,5}\)[ .\-]?\d{2,8}(?:[ .\-]\d{2,8}){0,3})
      | (?P<nanp>(?:1[ .\-])?[2-9]\d{2}(?P<sep>[ .\-])\d{3}(?P=sep)\d{4})
      | (?P<trunk>0\d{1,4}(?:[ .\-/]\d{2,8}){1,4})
    )
    (?!\w)(?![ .\-/]?\d)""",
    _FLAGS,
)
_PHONE_DIGITS = {"intl": (8, 15), "paren": (9, 11), "nanp": (10, 11), "trunk": (9, 12)}

_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}", _FLAGS)
# ISO 13616 IBAN registry: country -> total length.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

_CARD = re.compile(
    r"""(?<![\w.])(?<!\d[ -])
    (?:
        \d{4}(?P<s1>[ -])\d{4}(?P=s1)\d{4}(?P=s1)\d{1,7}
      | \d{4}(?P<s2>[ -])\d{6}(?P=s2)\d{4,5}
      | \d{13,19}
    )
    (?!\w|[.,]\d)(?![ -]\d{4})""",
    _FLAGS,
)
# Issuer prefixes: Visa 4; Mastercard 51-55, 2221-2720; Maestro 50, 56-59; Amex 34, 37;
# Diners 30, 36, 38, 39; JCB 35; Discover / UnionPay / Maestro 6.
_CARD_PREFIX = re.compile(r"4|5[0-9]|2[2-7]|3[0456789]|6")

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\w|\.\d)", _FLAGS)
_VERSION_BEFORE = re.compile(r"(?i)\b(?:version|release|ver\.?|build)\s*$")
_IPV6 = re.compile(
    r"""(?<![\w:.])
    (?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})
    (?:%[A-Za-z0-9]+)?
    (?![\w:]|\.\w)""",
    _FLAGS,
)

_API_KEY = re.compile(
    r"""(?<![\w-])sk-(?:proj-|svcacct-|admin-|ant-[a-z]+\d*-)?[A-Za-z0-9_\-]{20,}
      | (?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])
      | (?<![\w])gh[pousr]_[A-Za-z0-9]{36,255}(?!\w)
      | (?<![\w])github_pat_[A-Za-z0-9_]{22,255}
      | (?<![\w-])xox[baprs]-[A-Za-z0-9-]{10,}""",
    _FLAGS,
)
_SECRET_ASSIGNMENT = re.compile(
    r"""(?i)(?<![A-Za-z0-9])
    (?:x-api-key|api[_\-]?key|secret[_\-]?key|access[_\-]?token|auth[_\-]?token|client[_\-]?secret)
    ["']?\s*[:=]\s*["']?(?P<value>[A-Za-z0-9_\-./+=]{16,})
    | (?<![A-Za-z0-9])[Bb]earer\s+(?P<token>[A-Za-z0-9\-._~+/]{20,}=*)""",
    _FLAGS,
)
_PLACEHOLDER = re.compile(r"(?i)your|xxxx|example|placeholder|redacted|changeme|dummy")

# ----------------------------------------------------------------------- checks


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of card numbers.

    From the right, double every second digit (subtracting 9 when that passes 9) and
    sum: valid numbers sum to a multiple of 10. ``4111111111111111``: the doubled
    ones give 8 + 7*2 = 22, the others 8*1 = 8; 30 is a multiple of 10.
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616: right length for the country, and mod-97 of the rearranged number is 1.

    The first four characters move to the end and letters become numbers (A=10 …
    Z=35); the resulting integer mod 97 must be 1.
    """
    iban = iban.replace(" ", "")
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum() or not iban.isascii():
        return False
    return int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1


def _has_letter_and_digit(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _iban_at(text: str, m: re.Match) -> tuple[int, int] | None:
    """The span of the IBAN the candidate starts with, cut to its country's length."""
    length = _IBAN_LENGTHS.get(m.group()[:2])
    if length is None:
        return None
    count, end = 0, m.start()
    while end < m.end() and count < length:
        count += text[end] != " "
        end += 1
    if count < length or (end < len(text) and text[end].isalnum()):
        return None
    return (m.start(), end) if iban_ok(text[m.start() : end]) else None


def _phone_ok(m: re.Match) -> bool:
    kind = next(k for k in _PHONE_DIGITS if m.group(k))
    digits = re.sub(r"\D", "", m.group())
    lo, hi = _PHONE_DIGITS[kind]
    return lo <= len(digits) <= hi and len(set(digits)) > 1


def _ipv6_ok(candidate: str) -> bool:
    groups = [g for g in re.split(r"[:.]", candidate.split("%")[0]) if g]
    if len(groups) < 2 or (len(groups) < 3 and max(len(g) for g in groups) < 3):
        return False  # "a::b" in code, "::1"
    try:
        ipaddress.IPv6Address(candidate.split("%")[0])
    except ValueError:
        return False
    return True


def _candidates(text: str) -> list[tuple[int, int, int, str]]:
    """``(priority, start, end, kind)`` of every checked candidate, overlaps included."""
    rank = {kind: i for i, kind in enumerate(PII_KINDS)}
    found: list[tuple[int, int, str]] = []
    for m in _API_KEY.finditer(text):
        if _has_letter_and_digit(m.group()):
            found.append((m.start(), m.end(), "api_key"))
    for m in _SECRET_ASSIGNMENT.finditer(text):
        group = "value" if m.group("value") else "token"
        value = m.group(group)
        if _has_letter_and_digit(value) and not _PLACEHOLDER.search(value):
            found.append((m.start(group), m.end(group), "api_key"))
    found += [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    pos = 0
    while m := _IBAN.search(text, pos):
        span = _iban_at(text, m)
        if span:
            found.append((*span, "iban"))
        # On a miss, look again one character on: the candidate may have swallowed one.
        pos = span[1] if span else m.start() + 1
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_ok(digits):
            found.append((m.start(), m.end(), "credit_card"))
    for m in _IPV4.finditer(text):
        if not _VERSION_BEFORE.search(text[max(0, m.start() - 12) : m.start()]):
            found.append((m.start(), m.end(), "ip_address"))
    for m in _IPV6.finditer(text):
        if _ipv6_ok(m.group()):
            found.append((m.start(), m.end(), "ip_address"))
    found += [(m.start(), m.end(), "phone") for m in _PHONE.finditer(text) if _phone_ok(m)]
    return [(rank[kind], start, end, kind) for start, end, kind in found]


# ------------------------------------------------------------------------ public


def find_pii(text: str) -> list[PiiMatch]:
    """Personal data and secrets in ``text``: non-overlapping, sorted by position.

    >>> find_pii("Mail jane.doe@example.com or call +44 20 7946 0958.")
    [PiiMatch(kind='email', start=5, end=25, value='jane.doe@example.com'), PiiMatch(kind='phone', start=34, end=50, value='+44 20 7946 0958')]
    """
    starts: list[int] = []  # accepted spans, sorted and disjoint
    ends: list[int] = []
    out = []
    for _, start, end, kind in sorted(_candidates(text)):
        i = bisect.bisect_right(starts, start)
        if (i > 0 and ends[i - 1] > start) or (i < len(starts) and starts[i] < end):
            continue
        starts.insert(i, start)
        ends.insert(i, end)
        out.append(PiiMatch(kind, start, end, text[start:end]))
    return sorted(out, key=lambda m: m.start)


def redact(
    text: str, kinds: list[str] | tuple[str, ...] | None = None
) -> tuple[str, list[PiiMatch]]:
    """``text`` with each match of ``kinds`` (default: all) replaced by ``[REDACTED_<KIND>]``.

    Returns the new text and the matches that were replaced. Matches are found with
    every kind considered (so a card number is never half-redacted as a phone
    number), then filtered to ``kinds``.

    >>> redact("write to a@b.org", ["email"])[0]
    'write to [REDACTED_EMAIL]'
    """
    wanted = set(PII_KINDS if kinds is None else kinds)
    unknown = wanted - set(PII_KINDS)
    if unknown:
        raise ValueError(
            f"unknown PII kind(s) {', '.join(sorted(unknown))}; known: {', '.join(PII_KINDS)}"
        )
    matches = [m for m in find_pii(text) if m.kind in wanted]
    parts, pos = [], 0
    for m in matches:
        parts += [text[pos : m.start], f"[REDACTED_{m.kind.upper()}]"]
        pos = m.end
    parts.append(text[pos:])
    return "".join(parts), matches


def mask_value(value: str) -> str:
    """``value`` safe to show in a report: its ends kept, the middle starred.

    Two characters at each end for values of 8 or more characters, one for 5–7, none
    below that; the length is kept.

    >>> mask_value("jane.doe@example.com"), mask_value("secret"), mask_value("1234")
    ('ja****************om', 's****t', '****')
    """
    n = len(value)
    keep = 2 if n >= 8 else 1 if n >= 5 else 0
    if keep == 0:
        return "*" * n
    return value[:keep] + "*" * (n - 2 * keep) + value[-keep:]
