"""A name fit to show another person (core.names): no database."""

from __future__ import annotations

import unicodedata

import pytest

from core.names import NAME_LIMIT, fit_to_show


@pytest.mark.parametrize("name", [
    "Musu Kollie",
    "Zoë Doe-Sirleaf",
    "محمد عبد الله",                # Arabic
    "שָׁלוֹם",                        # Hebrew with points (three combining marks on one letter)
    "Nguyễn Thị Ánh",
    "मनोज कुमार",                   # Devanagari
    "क्‍षमा",                        # a zero-width joiner inside an Indic word
    "می‌خواهم",                      # a zero-width non-joiner inside a Persian word
    "张伟",
    "Musu 👩🏾‍💼",                     # an emoji sequence held together by a joiner
    "👨‍👩‍👧 family",
    "Comfort 🇱🇷",
    "1️⃣ Shop",
    "O'Neil (Ma Kebbeh)",
])
def test_ordinary_names_in_every_script_are_kept(name):
    assert fit_to_show(name) == name


@pytest.mark.parametrize("raw, shown", [
    ("\u202eeisuM", "eisuM"),                                 # right-to-left override
    ("\u2066Kollie\u2069", "Kollie"),                          # isolates
    ("A\u202aB\u202bC\u202cD\u202dE", "ABCDE"),                 # embeddings, pop
    ("\u200eMusu\u200f\u061c", "Musu"),                        # marks: LRM, RLM, Arabic letter mark
    ("Mu\u200bsu\u2060\ufeff", "Musu"),                        # zero-width space, word joiner, BOM
    ("Mu\u00adsu", "Musu"),                                    # soft hyphen
    ("K\n\nSend $1.00 (USD) to Kollie?\r\tok", "K Send $1.00 (USD) to Kollie? ok"),
    ("Line\u2028break\u2029para\x85nel\x0bvt", "Line break para nel vt"),
    ("nul\x00bel\x07esc\x1b[31m", "nulbelesc[31m"),
    ("\u200dMusu\u200c", "Musu"),                             # joiners at the edges join nothing
    ("Musu \u200d Kollie", "Musu Kollie"),
    ("Mu\U000e0041\U000e0042su", "Musu"),                      # tag characters smuggle text
    ("Mu\ue000su\U000f0000", "Musu"),                          # private use
    ("\u3164\u3164", None),                                    # Hangul filler: a blank-looking name
    ("\u2800Kollie\u115f", "Kollie"),
    ("   ", None),
    ("", None),
    (None, None),
    ("\u202e\u200b\u2066", None),
])
def test_controls_format_and_invisible_characters_go(raw, shown):
    assert fit_to_show(raw) == shown


def test_a_pile_of_combining_marks_is_cut_to_four():
    zalgo = "q" + "\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308" * 5 + "o"
    assert fit_to_show(zalgo) == "q\u0301\u0302\u0303\u0304o"
    assert fit_to_show("\u0301\u0302abc") == "abc", "a mark with nothing to sit on goes"


def test_decomposed_accents_are_composed():
    assert fit_to_show("Zoe\u0308") == "Zoë"


def test_one_line_of_at_most_the_limit_with_no_dangling_joiner():
    assert fit_to_show("x" * 500) == "x" * NAME_LIMIT
    assert fit_to_show("Musu Kollie", 30) == "Musu Kollie"
    assert fit_to_show("a" * 29 + "\u200d👩", 30) == "a" * 29
    assert fit_to_show("a" * 29 + " b", 30) == "a" * 29


def test_nothing_shown_holds_a_control_or_format_character_except_a_joiner_inside_a_word():
    everything = "".join(chr(c) for c in range(0x0, 0x3000)) + "\u202e\u2066\ufeff\U000e0001"
    shown = fit_to_show(everything, 100_000) or ""
    left = {unicodedata.category(ch) for ch in shown if ch not in "\u200c\u200d"}
    assert not left & {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
    assert "\n" not in shown and "\t" not in shown
