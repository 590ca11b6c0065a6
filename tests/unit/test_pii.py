"""Personal data and secrets: find, redact, mask (tuneloop.data.pii)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuneloop.data.pii import PII_KINDS, find_pii, iban_ok, luhn_ok, mask_value, redact


def kinds_values(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.value) for m in find_pii(text)]


POSITIVES = {
    "email": [
        "jane.doe@example.com",
        "j.doe+newsletter@mail.example.co.uk",
        "first_last-99@sub.domain.io",
    ],
    "phone": [
        "+44 20 7946 0958",
        "+1 (555) 123-4567",
        "+14155552671",
        "+33 1 23 45 67 89",
        "+49 30 12345678",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-800-555-0199",
        "020 7946 0958",
        "07700 900123",
        "030 12345678",
        "01 23 45 67 89",
    ],
    "iban": [
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
    ],
    "credit_card": [
        "4111 1111 1111 1111",  # Visa test number
        "4111-1111-1111-1111",
        "4111111111111111",
        "5500 0000 0000 0004",  # Mastercard
        "3782 822463 10005",  # Amex, 4-6-5
        "6011111111111117",  # Discover
    ],
    "ip_address": [
        "192.168.1.1",
        "10.0.0.255",
        "8.8.8.8",
        "2001:db8::8a2e:370:7334",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "fe80::1",
        "::ffff:192.0.2.1",
    ],
    "api_key": [
        "sk-proj-abc123DEF456ghi789JKL012mno",
        "sk-" + "A1b2C3d4" * 6,
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2" * 9,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-123456789012-abcdefABCDEF",
    ],
}


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, vs in POSITIVES.items() for v in vs])
def test_positives_alone_and_in_a_sentence(kind, value):
    assert kinds_values(value) == [(kind, value)]
    text = f"Details: {value}. Thanks!"
    assert kinds_values(text) == [(kind, value)]
    (m,) = find_pii(text)
    assert text[m.start : m.end] == value and m.start == len("Details: ")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('api_key="a8f5f167f44f4964e6c998dee827110c"', "a8f5f167f44f4964e6c998dee827110c"),
        ("API-KEY: Zx9QwErTy12345678abc", "Zx9QwErTy12345678abc"),
        ('{"apiKey": "Zx9QwErTy12345678"}', "Zx9QwErTy12345678"),
        ("client_secret=s3cr3tV4lu3s3cr3tV4lu3", "s3cr3tV4lu3s3cr3tV4lu3"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc123",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc123",
        ),
    ],
)
def test_secret_assignments_redact_only_the_value(text, value):
    assert kinds_values(text) == [("api_key", value)]


NEGATIVES = [
    # emails
    "user@localhost",
    "@decorator on a method",
    "a @ b . com",
    # years, dates, times, short numbers
    "In 2024 we shipped 3 releases.",
    "on 2024-01-15 at 14:30:00",
    "15.01.2024 and 12/05/2023",
    "call ext. 4567 or room 123",
    # decimals, prices, percentages
    "pi is 3.14159265358979",
    "0.123456789 and 1e-10",
    "$1,234.56 or €1.234.567,89 or 1 234 567 kr",
    # version numbers
    "version 1.2.3.4.5",
    "v1.2.3.4",
    "version 1.2.3.4",
    "release 10.0.19041.1415",
    # order numbers, ids, timestamps
    "Order #123456789",
    "order 0012345678 shipped",
    "timestamp 1700000000000",
    "invoice 2023-000123-45",
    # ISBNs
    "ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "ISBN 978-0-306-40615-7",
    "ISBN 9780306406157",
    # card-like numbers that fail Luhn, or have no card prefix
    "4111 1111 1111 1112",
    "4111111111111112",
    "5500 0000 0000 0005",
    "1234 5678 9012 3456",
    # IBAN-like with a wrong checksum or length
    "DE89 3704 0044 0532 0130 01",
    "DE89 3704 0044 0532 0130",
    "XX89 3704 0044 0532 0130 00",
    # not IP addresses
    "192.168.1.256",
    "std::vector<int> and a::b",
    "12:30:45",
    "MAC 00:1a:2b:3c:4d:5e",
    # not API keys
    "sk-learn is a library",
    "sk-this-is-just-a-long-sentence-id",
    "API_KEY=YOUR_API_KEY_HERE_123",
    "api_key=short1",
    "Bearer token",
    "AKIA1234",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_negatives(text):
    assert find_pii(text) == []


def test_luhn_by_hand():
    """4111111111111111: from the right, the doubled digits (every second one) are seven
    1s and the leading 4 -> 7*2 + 8 = 22; the others are eight 1s -> 8; 30 % 10 == 0.
    Changing the last digit to 2 gives 31: invalid."""
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert luhn_ok("79927398713")  # the textbook example
    assert not luhn_ok("79927398710")


def test_iban_checksum_by_hand():
    """GB82WEST12345698765432 -> WEST12345698765432GB82 -> letters to numbers (W=32,
    E=14, S=28, T=29, G=16, B=11): 3214282912345698765432161182, which is 1 mod 97."""
    assert int("3214282912345698765432161182") % 97 == 1
    assert iban_ok("GB82WEST12345698765432")
    assert iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not iban_ok("GB83WEST12345698765432")  # check digits off by one
    assert not iban_ok("GB82WEST1234569876543")  # one character short for GB
    assert not iban_ok("ZZ82WEST12345698765432")  # no such country


def test_card_luhn_valid_vs_invalid_in_text():
    assert kinds_values("pay with 4111 1111 1111 1111 exp 12/25") == [
        ("credit_card", "4111 1111 1111 1111")
    ]
    assert kinds_values("pay with 4111 1111 1111 1112 exp 12/25") == []


def test_iban_found_after_a_false_start():
    assert kinds_values("AB12 DE89 3704 0044 0532 0130 00") == [
        ("iban", "DE89 3704 0044 0532 0130 00")
    ]


def test_several_kinds_sorted_and_non_overlapping():
    text = (
        "Contact jane@example.com or +44 20 7946 0958; pay DE89 3704 0044 0532 0130 00 "
        "or card 4111111111111111. Server 10.0.0.1, key AKIAIOSFODNN7EXAMPLE."
    )
    assert [m.kind for m in find_pii(text)] == [
        "email",
        "phone",
        "iban",
        "credit_card",
        "ip_address",
        "api_key",
    ]


def test_url_with_ip_and_email_in_mailto():
    assert kinds_values("see http://192.168.0.10:8080/x") == [("ip_address", "192.168.0.10")]
    assert kinds_values("mailto:bob@example.org") == [("email", "bob@example.org")]


# ------------------------------------------------------------------------ redact

ALL_KINDS_TEXT = (
    "Mail jane.doe@example.com, call +1 (555) 123-4567, IBAN GB82 WEST 1234 5698 7654 32, "
    "card 3782 822463 10005, host 2001:db8::1 and 8.8.4.4, token ghp_" + "x9Y8" * 9 + "."
)


def test_redact_replaces_every_kind():
    redacted, matches = redact(ALL_KINDS_TEXT)
    assert sorted(m.kind for m in matches) == sorted([*PII_KINDS, "ip_address"])
    for m in matches:
        assert m.value not in redacted
    assert find_pii(redacted) == []
    assert redacted.startswith(
        "Mail [REDACTED_EMAIL], call [REDACTED_PHONE], IBAN [REDACTED_IBAN], "
    )
    assert "[REDACTED_CREDIT_CARD]" in redacted and "[REDACTED_API_KEY]." in redacted
    assert redacted.count("[REDACTED_IP_ADDRESS]") == 2


def test_redact_selected_kinds_only():
    redacted, matches = redact(ALL_KINDS_TEXT, ["email", "phone"])
    assert [m.kind for m in matches] == ["email", "phone"]
    assert "jane.doe@example.com" not in redacted and "8.8.4.4" in redacted
    with pytest.raises(ValueError, match="unknown PII kind"):
        redact("x", ["emails"])


def test_redact_without_matches_is_identity():
    assert redact("nothing to see, version 1.2.3.4.5") == ("nothing to see, version 1.2.3.4.5", [])


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("jane.doe@example.com", "ja****************om"),
        ("4111111111111111", "41************11"),
        ("secret", "s****t"),
        ("abcde", "a***e"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_value(value, masked):
    assert mask_value(value) == masked
    assert len(mask_value(value)) == len(value)


# -------------------------------------------------------------------- properties

_SNIPPETS = [v for vs in POSITIVES.values() for v in vs] + NEGATIVES[:12]
_pii_like_text = st.lists(
    st.one_of(
        st.sampled_from(_SNIPPETS),
        st.text(alphabet="0123456789 .-+:/()@abcdefxAKIsk_=\n", max_size=30),
        st.text(max_size=20),
    ),
    max_size=8,
).map("".join)


def _check_invariants(text: str) -> None:
    matches = find_pii(text)
    for m in matches:
        assert m.kind in PII_KINDS
        assert 0 <= m.start < m.end <= len(text)
        assert text[m.start : m.end] == m.value
    for a, b in zip(matches, matches[1:], strict=False):
        assert a.end <= b.start  # sorted and non-overlapping
    redacted, replaced = redact(text)
    assert replaced == matches
    assert redacted.count("[REDACTED_") == len(matches) + text.count("[REDACTED_")


@settings(max_examples=300, deadline=None)
@given(_pii_like_text)
def test_find_pii_invariants_on_pii_like_text(text):
    _check_invariants(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_find_pii_invariants_on_any_text(text):
    _check_invariants(text)
