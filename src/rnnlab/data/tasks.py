"""Built-in source/target tasks for learning and demos (``rnnlab seq2seq data NAME``).

Each generator returns ``count`` distinct ``(source, target)`` pairs of strings, fixed by ``seed``:

- ``addition``: Keras' ``addition_rnn`` example, two numbers of 1 to ``digits`` digits (each length
  equally likely) and their sum: ``"123+45" -> "168"``. Pairs are distinct as unordered questions
  (``a+b`` and ``b+a`` count once), as in Keras.
- ``reverse``: a string of 1 to ``max_length`` lowercase letters and its reverse: ``"abc" -> "cba"``.
- ``dates``: a day between 1950-01-01 and 2049-12-31 written in one of :data:`DATE_FORMATS` (English
  names, independent of the locale) and its ISO form: ``"25th of June, 2009" -> "2009-06-25"``. Two-digit
  years read as 19yy from 50 up and 20yy below, slashes are month-first (US) and dots day-first, so
  every source names exactly one day.

>>> generate("addition", 2, seed=0)
[('636+26', '662'), ('0+0', '0')]
>>> source, target = generate("dates", 1, seed=3)[0]
>>> target
'2031-02-25'
"""
from __future__ import annotations

import datetime

import numpy as np

__all__ = ["TASKS", "DATE_FORMATS", "generate", "addition_pairs", "reverse_pairs", "date_pairs", "format_date"]

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIRST_DAY = datetime.date(1950, 1, 1)
LAST_DAY = datetime.date(2049, 12, 31)


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# name -> how a date is written; {d} day, {dd} two-digit day, {do} 25th, {m}/{mm} month number,
# {B} June, {b} Jun, {A} Thursday, {a} Thu, {Y} 2009, {y} 09
DATE_FORMATS = {
    "ordinal_of": "{do} of {B}, {Y}",          # 25th of June, 2009
    "the_ordinal_of": "the {do} of {B} {Y}",   # the 25th of June 2009
    "us_short": "{m}/{d}/{y}",                 # 6/25/09
    "us_numeric": "{mm}/{dd}/{Y}",             # 06/25/2009
    "us_long": "{B} {d}, {Y}",                 # June 25, 2009
    "us_weekday": "{A}, {B} {d}, {Y}",         # Thursday, June 25, 2009
    "us_abbreviated": "{b} {d}, {Y}",          # Jun 25, 2009
    "us_ordinal": "{B} {do}, {Y}",             # June 25th, 2009
    "day_month": "{d} {B} {Y}",                # 25 June 2009
    "day_month_abbreviated": "{d} {b} {Y}",    # 25 Jun 2009
    "weekday_day_month": "{a}, {d} {b} {Y}",   # Thu, 25 Jun 2009
    "dotted": "{dd}.{mm}.{Y}",                 # 25.06.2009
    "dotted_short": "{d}.{m}.{y}",             # 25.6.09
    "lower": "{B_lower} {d} {Y}",              # june 25 2009
    "upper": "{B_upper} {d}, {Y}",             # JUNE 25, 2009
    "weekday_long": "{A} {d} {B} {Y}",         # Thursday 25 June 2009
}


def format_date(day: datetime.date, style: str) -> str:
    """``day`` written in the :data:`DATE_FORMATS` ``style``.

    >>> format_date(datetime.date(2009, 6, 25), "us_weekday")
    'Thursday, June 25, 2009'
    """
    month, weekday = MONTHS[day.month - 1], WEEKDAYS[day.weekday()]
    return DATE_FORMATS[style].format(
        d=day.day, dd=f"{day.day:02d}", do=_ordinal(day.day), m=day.month, mm=f"{day.month:02d}", B=month,
        b=month[:3], A=weekday, a=weekday[:3], Y=day.year, y=f"{day.year % 100:02d}", B_lower=month.lower(),
        B_upper=month.upper())


def _distinct(count: int, draw, limit: str) -> list[tuple[str, str]]:
    """``count`` distinct pairs from ``draw()`` (which returns ``(key, source, target)``)."""
    seen, pairs = set(), []
    attempts = 0
    while len(pairs) < count:
        key, source, target = draw()
        attempts += 1
        if key not in seen:
            seen.add(key)
            pairs.append((source, target))
        elif attempts > 50 * count + 1000:
            raise ValueError(f"cannot draw {count} distinct pairs ({len(pairs)} found); {limit}")
    return pairs


def addition_pairs(count: int, seed: int = 0, digits: int = 3) -> list[tuple[str, str]]:
    """``count`` distinct questions ``"a+b"`` (each number of 1 to ``digits`` digits) with their sums."""
    rng = np.random.default_rng(seed)

    def number() -> int:
        # a string of L random digits (L uniform in 1..digits) read as an integer: uniform below 10**L
        return int(rng.integers(0, 10 ** int(rng.integers(1, digits + 1))))

    def draw():
        a, b = number(), number()
        return (min(a, b), max(a, b)), f"{a}+{b}", str(a + b)

    return _distinct(count, draw, "ask for fewer, or use more --digits")


def reverse_pairs(count: int, seed: int = 0, max_length: int = 12) -> list[tuple[str, str]]:
    """``count`` distinct strings of 1 to ``max_length`` lowercase letters with their reverses."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))

    def draw():
        text = "".join(rng.choice(letters, size=int(rng.integers(1, max_length + 1))))
        return text, text, text[::-1]

    return _distinct(count, draw, "ask for fewer, or use a longer --max-length")


def date_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` distinct human-written dates (style and day drawn uniformly) with their ISO forms."""
    rng = np.random.default_rng(seed)
    styles = list(DATE_FORMATS)
    span = (LAST_DAY - FIRST_DAY).days + 1

    def draw():
        day = FIRST_DAY + datetime.timedelta(days=int(rng.integers(span)))
        source = format_date(day, styles[int(rng.integers(len(styles)))])
        return source, source, day.isoformat()

    return _distinct(count, draw, "ask for fewer")


TASKS = {"addition": addition_pairs, "reverse": reverse_pairs, "dates": date_pairs}


def generate(task: str, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` distinct pairs of the named task (one of :data:`TASKS`), fixed by ``seed``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    return TASKS[task](count, seed)
