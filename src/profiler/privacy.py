"""Masking personal numbers and addresses in the text the tool writes (``privacy.redact``).

Call transcripts carry phone, ID-card and bank-card numbers. Profiles and reports quote customer
turns as evidence and travel further than the raw data, so they are redacted by default.

Covered (digits written as digits, optionally split by spaces or hyphens):
  * mainland mobile numbers (1[3-9] + 9 digits, with or without +86/86) and landlines written with
    an area code and a hyphen (010-12345678, 0755-1234567)        -> [PHONE]
  * 18-digit resident ID numbers whose check digit is valid (GB 11643) -> [ID]
  * bank-card numbers of 16-19 digits that pass the Luhn check       -> [CARD]
  * e-mail addresses                                                 -> [EMAIL]
Not covered: numbers spelt in Chinese characters (一三八…, as ASR may write them), numbers split in
other ways, names, addresses, 15-digit first-generation IDs, account numbers that fail Luhn.
Digits inside a longer run of digits are never masked: an order number is not a phone number.
"""

from __future__ import annotations

import re

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
ID_CARD = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
# 16-19 digits, possibly in groups split by one space or hyphen
CARD = re.compile(r"(?<![\d-])\d{4}(?:[ -]?\d){12,15}(?![\d-])")
MOBILE = re.compile(r"(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
LANDLINE = re.compile(r"(?<![\d-])0\d{2,3}-\d{7,8}(?![\d-])")


def id_checksum_ok(number: str) -> bool:
    """GB 11643 check digit of an 18-character resident ID number."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _mask_ids(match: re.Match) -> str:
    return "[ID]" if id_checksum_ok(match.group()) else match.group()


def _mask_cards(match: re.Match) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return "[CARD]" if 16 <= len(digits) <= 19 and luhn_ok(digits) else match.group()


def redact(text: str) -> str:
    """``text`` with phone, ID-card, bank-card numbers and e-mail addresses masked.

    Order matters: e-mails first (they may hold digits), IDs before cards (an 18-digit ID can
    pass Luhn by chance), cards before phones (a phone number is a run inside no longer one)."""
    if not text:
        return text
    text = EMAIL.sub("[EMAIL]", text)
    text = ID_CARD.sub(_mask_ids, text)
    text = CARD.sub(_mask_cards, text)
    text = MOBILE.sub("[PHONE]", text)
    return LANDLINE.sub("[PHONE]", text)
