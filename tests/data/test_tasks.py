"""The built-in seq2seq tasks: distinct pairs fixed by the seed, and every target right."""
import datetime
import re

import pytest

from rnnlab.data.tasks import DATE_FORMATS, MONTHS, format_date, generate


def test_a_seed_fixes_the_pairs_and_different_seeds_differ():
    for task in ("addition", "reverse", "dates"):
        assert generate(task, 200, seed=1) == generate(task, 200, seed=1)
        assert generate(task, 200, seed=1) != generate(task, 200, seed=2)


def test_addition_is_keras_style_distinct_and_right():
    pairs = generate("addition", 5000, seed=0)
    questions = set()
    lengths = set()
    for source, target in pairs:
        assert re.fullmatch(r"\d{1,3}\+\d{1,3}", source), source
        a, b = map(int, source.split("+"))
        assert int(target) == a + b and target == str(a + b)
        questions.add((min(a, b), max(a, b)))
        lengths.update(len(part) for part in source.split("+"))
    assert len(questions) == 5000          # a+b and b+a count once
    assert lengths == {1, 2, 3}


def test_reverse_targets_are_the_reversed_sources():
    pairs = generate("reverse", 1000, seed=0)
    assert len({s for s, _ in pairs}) == 1000
    assert all(t == s[::-1] and s.isalpha() and s.islower() and 1 <= len(s) <= 12 for s, t in pairs)


def _read_back(source: str) -> datetime.date:
    """An independent reading of every format: the numbers and the month name, nothing from tasks.py."""
    text = source.lower().replace(",", "").replace("the ", "")
    month_names = {name.lower(): k + 1 for k, name in enumerate(MONTHS)}
    month_names.update({name.lower()[:3]: k + 1 for k, name in enumerate(MONTHS)})

    def year(value: str) -> int:
        return int(value) if len(value) == 4 else (1900 if int(value) >= 50 else 2000) + int(value)

    if "/" in text:
        m, d, y = text.split("/")
        return datetime.date(year(y), int(m), int(d))
    if "." in text:
        d, m, y = text.split(".")
        return datetime.date(year(y), int(m), int(d))
    words = [w for w in text.split() if w != "of" and w[:3] not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
    month = next(month_names[w] for w in words if w in month_names)
    numbers = [w for w in words if w not in month_names]
    day = next(int(re.sub(r"(st|nd|rd|th)$", "", w)) for w in numbers if len(re.sub(r"\D", "", w)) <= 2)
    return datetime.date(year(numbers[-1]), month, day)


def test_every_date_source_names_the_day_of_its_iso_target():
    pairs = generate("dates", 4000, seed=0)
    assert len({s for s, _ in pairs}) == 4000
    for source, target in pairs:
        day = datetime.date.fromisoformat(target)
        assert datetime.date(1950, 1, 1) <= day <= datetime.date(2049, 12, 31)
        assert _read_back(source) == day, (source, target)


@pytest.mark.parametrize("style, expected", [
    ("ordinal_of", "25th of June, 2009"), ("us_short", "6/25/09"), ("us_weekday", "Thursday, June 25, 2009"),
    ("dotted", "25.06.2009"), ("weekday_day_month", "Thu, 25 Jun 2009"), ("upper", "JUNE 25, 2009"),
])
def test_the_formats_the_issue_names(style, expected):
    assert format_date(datetime.date(2009, 6, 25), style) == expected


def test_ordinals_and_weekdays():
    assert format_date(datetime.date(2001, 3, 1), "us_ordinal") == "March 1st, 2001"
    assert format_date(datetime.date(2001, 3, 2), "us_ordinal") == "March 2nd, 2001"
    assert format_date(datetime.date(2001, 3, 13), "us_ordinal") == "March 13th, 2001"
    assert format_date(datetime.date(2001, 3, 23), "us_ordinal") == "March 23rd, 2001"
    assert format_date(datetime.date(2026, 12, 1), "weekday_long") == "Tuesday 1 December 2026"


def test_every_format_is_drawn():
    sources = [s for s, _ in generate("dates", 3000, seed=1)]
    for style in DATE_FORMATS:
        sample = format_date(datetime.date(2011, 11, 22), style)
        shape = re.sub(r"[A-Za-z]+", "A", re.sub(r"\d+", "9", sample))
        assert any(re.sub(r"[A-Za-z]+", "A", re.sub(r"\d+", "9", s)) == shape for s in sources), style


def test_bad_requests():
    with pytest.raises(ValueError, match="unknown task"):
        generate("poems", 3)
    with pytest.raises(ValueError, match="count must be positive"):
        generate("dates", 0)
