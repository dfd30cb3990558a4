"""Amounts of money in a shopper's words: digits ("49.99", "1,200", "1.5k") or English number words
("fifty", "one hundred and twenty", "forty-five"), with an optional currency before or after."""

import re
from dataclasses import dataclass

CURRENCY_SYMBOLS = frozenset({"$", "€", "£"})
CURRENCY_WORDS = frozenset({"dollar", "dollars", "usd", "bucks", "euro", "euros", "eur", "pound", "pounds", "gbp",
                            "quid"})
_UNITS = {word: value for value, word in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
     "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
_TENS = {word: 10 * (value + 2) for value, word in enumerate(
    ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])}
_SCALES = {"hundred": 100, "thousand": 1000}
NUMBER_WORDS = frozenset({*_UNITS, *_TENS, *_SCALES})
_DIGITS = re.compile(r"^(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(k?)$")


@dataclass(frozen=True)
class Amount:
    value: float
    end: int  # the token after the amount
    currency: bool  # a currency symbol or word was given: certainly money


def amount_at(tokens: list[str], start: int) -> Amount | None:
    """The amount that starts at tokens[start], if one does."""
    position, currency = start, False
    if position < len(tokens) and tokens[position] in CURRENCY_SYMBOLS:
        position, currency = position + 1, True
    number = number_at(tokens, position)
    if number is None:
        return None
    value, position = number
    if position < len(tokens) and (tokens[position] in CURRENCY_SYMBOLS or tokens[position] in CURRENCY_WORDS):
        position, currency = position + 1, True
    return Amount(value, position, currency)


def number_at(tokens: list[str], start: int) -> tuple[float, int] | None:
    """A number in digits or in words at tokens[start], and the token after it."""
    if start >= len(tokens):
        return None
    digits = _DIGITS.match(tokens[start])
    if digits:
        whole, fraction, thousands = digits.groups()
        value = float(whole.replace(",", "") + (fraction or ""))
        return value * (1000 if thousands else 1), start + 1
    return _words_at(tokens, start)


def _words_at(tokens: list[str], start: int) -> tuple[float, int] | None:
    total, current, position, seen = 0, 0, start, False
    while position < len(tokens):
        parts = tokens[position].split("-")  # forty-five
        if tokens[position] == "a" and not seen and _next_is_scale(tokens, position):
            current, position = 1, position + 1
            continue
        if tokens[position] == "and" and seen and _next_is_number(tokens, position):
            position += 1
            continue
        if not all(part in NUMBER_WORDS for part in parts):
            break
        for part in parts:
            if part in _UNITS:
                current += _UNITS[part]
            elif part in _TENS:
                current += _TENS[part]
            elif part == "hundred":
                current = max(current, 1) * 100
            else:
                total, current = total + max(current, 1) * _SCALES[part], 0
        seen, position = True, position + 1
    return (float(total + current), position) if seen else None


def _next_is_scale(tokens: list[str], position: int) -> bool:
    return position + 1 < len(tokens) and tokens[position + 1] in _SCALES


def _next_is_number(tokens: list[str], position: int) -> bool:
    return position + 1 < len(tokens) and all(p in NUMBER_WORDS for p in tokens[position + 1].split("-"))
