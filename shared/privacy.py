"""Personal data rules (PIPL Art. 28/51; GB/T 35273-2020): masking and scrubbing.

Phones are shown as ``138****8000``, resident ID numbers as ``110105********1234``;
free text that may contain either is scrubbed before it reaches a log line or an event.
"""

from __future__ import annotations

import re

# Mainland mobile numbers (optionally +86), not glued to longer digit runs.
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
# 18-character resident identity numbers (last may be X).
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")


def mask_phone(phone: str | None) -> str | None:
    """138****8000; shorter numbers keep only their last four digits."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) == 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return "****" + digits[-4:] if len(digits) > 4 else "****"


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) == 18:
        return f"{value[:6]}********{value[-4:]}"
    return "*" * max(0, len(value) - 4) + value[-4:]


def scrub(text: str) -> str:
    """Mask every phone and ID number found in free text."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}********{m.group(3)[-4:]}", text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def contains_personal_numbers(text: str) -> bool:
    return bool(_PHONE.search(text) or _ID_NUMBER.search(text))
