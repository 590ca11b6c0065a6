"""Verifiable instructions (``tuneloop.eval.ifeval``): every checker, strict vs loose, scorers, data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneloop.data.records import EvalSample
from tuneloop.eval.ifeval import (
    INSTRUCTIONS,
    IFEvalResult,
    accuracy_summary,
    detect_language,
    evaluate,
    get_instruction,
    instruction_level_accuracy,
    instruction_level_from_scores,
    loose_variants,
    prompt_level_accuracy,
    split_sentences,
)
from tuneloop.eval.scoring import Completion, get_scorer

DATA = Path(__file__).resolve().parents[2] / "data" / "eval" / "ifeval" / "ifeval.jsonl"

LONG_EN = " ".join(["word"] * 150)

# (instruction id, kwargs, a response that passes, a response that fails)
CASES = [
    (
        "keywords:existence",
        {"keywords": ["flour", "jar"]},
        "Keep FLOUR in a Jar.",
        "Keep flour in a tin.",
    ),
    (
        "keywords:frequency",
        {"keyword": "thanks", "frequency": 2, "relation": "at least"},
        "Thanks! Many thanks.",
        "Thanks.",
    ),
    (
        "keywords:frequency",
        {"keyword": "burn", "frequency": 2, "relation": "less than"},
        "I burn.",
        "burn burn",
    ),
    (
        "keywords:forbidden_words",
        {"forbidden_words": ["light", "blue"]},
        "Sunlight scatters.",
        "The blue sky.",
    ),
    (
        "keywords:letter_frequency",
        {"letter": "p", "let_frequency": 3, "let_relation": "at least"},
        "Pip paints.",
        "Pip.",
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
        "A zoo.",
        "Zig zag.",
    ),
    (
        "language:response_language",
        {"language": "fr"},
        "Le chat est sur la table et il dort.",
        "The cat is on the table and it sleeps.",
    ),
    (
        "language:response_language",
        {"language": "de"},
        "Der Hund ist nicht hier und die Katze auch.",
        "El perro está en la casa y no come.",
    ),
    ("language:response_language", {"language": "ja"}, "私は猫が好きです。", "我今天很高兴。"),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "Dr. Smith paid 3.5 euros. Fine.",
        "One. Two. Three.",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "at least"},
        "One. Two! Three?",
        "One. Two.",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n***\nSecond part.",
        "First.\n***\n***\nSecond.",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": "less than"},
        "Only four words here.",
        "Now there are five words.",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 150, "relation": "at least"},
        LONG_EN,
        "Too short.",
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "fear"},
        'Intro.\n\n"Fear, at first."',
        "Fear first.\n\nThen later.",
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Dear [name], at [street].",
        "Dear [name], hello.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.S."},
        "Thanks.\n\nP.S. See you soon.",
        "Thanks. See you soon.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Bye.\nP.P.S. bring cake",
        "Bye.\nP.S. bring cake",
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "* boots\n- water",
        "* boots\n* water\n* map",
    ),
    ("detectable_format:constrained_response", {}, "My answer is no.", "No, I don't think so."),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "*one* and **two**",
        "*one* and ** **",
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "DAY", "num_sections": 2},
        "DAY 1\nbeach\nDAY 2\nzoo",
        "DAY 1\nbeach and zoo",
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', "{'a': 1}"),
    ("detectable_format:title", {}, "<<Fox on Ice>>\nA fox...", "<< >>\nA fox..."),
    ("combination:two_responses", {}, "Rye Rise\n******\nCrust & Co", "Rye Rise\n******\nRye Rise"),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Why is the sea salty?"},
        "why is the sea salty? Rivers carry salts.",
        "Rivers carry salts.",
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        'Done. "Any other questions?"',
        "Any other questions? Bye.",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "A BIG FAIR!",
        "A big Fair!",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "A big fair",
        "A BIG FAIR",
    ),
    (
        "change_case:english_capital",
        {},
        "RUN AND THE CROWD WILL CHEER FOR YOU!",
        "Run and the crowd will cheer.",
    ),
    (
        "change_case:english_lowercase",
        {},
        "the cabin is quiet and the snow is deep.",
        "The cabin is quiet.",
    ),
    ("punctuation:no_comma", {}, "Warm the pot then add leaves.", "Warm the pot, then add leaves."),
    ("startend:quotation", {}, '  "Ask questions early."  ', 'Ask questions "early".'),
]


@pytest.mark.parametrize(
    ("iid", "kwargs", "good", "bad"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_checker_passes_and_fails(iid, kwargs, good, bad):
    checker = INSTRUCTIONS[iid]
    assert checker.check(good, **kwargs) is True
    assert checker.check(bad, **kwargs) is False


def test_all_25_ifeval_instructions_are_registered_and_tested():
    assert len(INSTRUCTIONS) == 25
    assert {c[0] for c in CASES} == set(INSTRUCTIONS)


def test_language_heuristic_on_the_required_languages():
    samples = {
        "en": "The cat is on the mat and it was happy.",
        "fr": "Le chat est sur la table et il dort.",
        "de": "Der Hund ist nicht hier und die Katze auch.",
        "es": "El perro está en la casa y no come.",
        "it": "Il gatto è sul tavolo e non mangia per niente.",
        "pt": "O gato não está em casa e não come.",
        "nl": "De kat is niet in het huis en ik ben daar.",
        "ru": "Кошка спит на диване.",
        "zh": "我今天很高兴。",
        "ja": "私は猫が好きです。",
        "ar": "القطة نائمة على الأريكة",
        "hi": "बिल्ली सो रही है",
    }
    assert {code: detect_language(text) for code, text in samples.items()} == {
        c: c for c in samples
    }
    assert detect_language("1234 !!") is None


def test_undetectable_language_counts_as_followed():
    """As IFEval, where langdetect raising on a response is logged and counted as a pass."""
    assert INSTRUCTIONS["language:response_language"].check("42", language="fr")


def test_sentence_splitter_keeps_abbreviations_and_decimals():
    assert split_sentences("Dr. Smith went to Washington. He paid 3.5 dollars! Why?") == [
        "Dr. Smith went to Washington.",
        "He paid 3.5 dollars!",
        "Why?",
    ]


# ------------------------------------------------------------------ strict vs loose


def test_bold_wrapped_response_passes_loose_only():
    """``**"..."**``: the quotes are not first/last characters until ``*`` is removed."""
    result = evaluate('**"Ask questions early."**', ["startend:quotation"], [{}])
    assert result == IFEvalResult(strict=[False], loose=[True])


def test_leading_chatter_line_passes_loose_only():
    """The first line "Sure, here it is:" has a comma and is not in lowercase; dropping it fixes both."""
    response = "Sure, here it is:\nthe cabin is quiet and the snow is deep."
    result = evaluate(response, ["punctuation:no_comma", "change_case:english_lowercase"], [{}, {}])
    assert result.strict == [False, False]
    assert result.loose == [True, True]


def test_loose_variants_are_ifevals_eight():
    assert loose_variants("a\n*b*\nc") == [
        "a\n*b*\nc",
        "*b*\nc",
        "a\n*b*",
        "*b*",
        "a\nb\nc",
        "b\nc",
        "a\nb",
        "b",
    ]


def test_empty_response_never_passes():
    """``no_comma`` is trivially true of "", but IFEval requires a non-empty response."""
    assert evaluate("  ", ["punctuation:no_comma"], [{}]) == IFEvalResult(
        strict=[False], loose=[False]
    )


# ------------------------------------------------------------------------ accuracy


def test_accuracies_by_hand():
    """Three prompts, strict flags [T, F] / [T] / [F, F, T]; loose [T, T] / [T] / [F, T, T].

    prompt strict = 1/3 (only the 2nd); prompt loose = 2/3 (1st and 2nd);
    instruction strict = (1 + 1 + 1) / 6 = 0.5; instruction loose = (2 + 1 + 2) / 6 = 5/6.
    """
    results = [
        IFEvalResult([True, False], [True, True]),
        IFEvalResult([True], [True]),
        IFEvalResult([False, False, True], [False, True, True]),
    ]
    assert prompt_level_accuracy(results) == pytest.approx(1 / 3)
    assert prompt_level_accuracy(results, loose=True) == pytest.approx(2 / 3)
    assert instruction_level_accuracy(results) == pytest.approx(0.5)
    assert instruction_level_accuracy(results, loose=True) == pytest.approx(5 / 6)
    assert accuracy_summary(results) == pytest.approx(
        {
            "prompt_strict": 1 / 3,
            "prompt_loose": 2 / 3,
            "instruction_strict": 0.5,
            "instruction_loose": 5 / 6,
        }
    )
    assert prompt_level_accuracy([]) == 0.0 and instruction_level_accuracy([]) == 0.0


# ------------------------------------------------------------------------- scorers


def _sample(ids, kwargs, sid="s1"):
    return EvalSample.model_validate(
        {
            "id": sid,
            "input": [{"role": "user", "content": "q"}],
            "metadata": {"instruction_id_list": ids, "kwargs": kwargs},
        }
    )


def test_scorers_on_eval_samples():
    """Strict: comma in line 1 fails no_comma -> value 0; loose drops line 1 -> value 1.

    Instruction level over both samples (strict): [F, T] + [T] -> 2/3.
    """
    s1 = _sample(["punctuation:no_comma", "keywords:existence"], [{}, {"keywords": ["tea"]}])
    s2 = _sample(["detectable_format:title"], [{}], sid="s2")
    c1 = Completion(text="Sure, here you go:\nWarm the pot and add tea.")
    c2 = Completion(text="<<Tea>>\nBrew it.")
    strict, loose = get_scorer("ifeval_strict"), get_scorer("ifeval_loose")
    a = strict(s1, c1)
    assert (a.value, a.passed) == (0.0, False)
    assert a.metadata == {
        "mode": "strict",
        "instruction_id_list": ["punctuation:no_comma", "keywords:existence"],
        "followed": [False, True],
    }
    assert "punctuation:no_comma" in a.explanation
    b = loose(s1, c1)
    assert (b.value, b.passed, b.metadata["followed"]) == (1.0, True, [True, True])
    assert instruction_level_from_scores([a, strict(s2, c2)]) == pytest.approx(2 / 3)


def test_scorer_rejects_a_sample_without_instructions():
    sample = EvalSample.model_validate({"id": "x", "input": [{"role": "user", "content": "q"}]})
    with pytest.raises(ValueError, match="'x'.*instruction_id_list"):
        get_scorer("ifeval_strict")(sample, Completion(text="hi"))


def test_scorer_names_the_sample_on_bad_kwargs():
    sample = _sample(["keywords:existence"], [{}], sid="bad-1")
    with pytest.raises(ValueError, match="'bad-1'.*keywords:existence.*'keywords'"):
        get_scorer("ifeval_loose")(sample, Completion(text="hi"))


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("iid", "kwargs", "match"),
    [
        ("keywords:existence", {}, "keywords:existence: missing argument 'keywords'"),
        ("keywords:existence", {"keywords": "flour"}, "keywords:existence: bad argument keywords"),
        (
            "keywords:frequency",
            {"keyword": "a", "frequency": 2, "relation": "at most"},
            "keywords:frequency: bad argument relation",
        ),
        (
            "keywords:letter_frequency",
            {"letter": "ab", "let_frequency": 1, "let_relation": "at least"},
            "bad argument letter",
        ),
        (
            "length_constraints:number_words",
            {"num_words": -1, "relation": "at least"},
            "bad argument num_words",
        ),
        (
            "length_constraints:number_words",
            {"num_words": True, "relation": "at least"},
            "bad argument num_words",
        ),
        (
            "language:response_language",
            {"language": "xx"},
            "language:response_language: bad argument language",
        ),
        ("punctuation:no_comma", {"extra": 1}, "punctuation:no_comma: unexpected argument 'extra'"),
    ],
)
def test_bad_kwargs_name_instruction_and_argument(iid, kwargs, match):
    with pytest.raises(ValueError, match=match):
        INSTRUCTIONS[iid].check("text", **kwargs)


def test_unknown_instruction_and_length_mismatch():
    with pytest.raises(ValueError, match="unknown instruction 'keywords:nonsense'"):
        get_instruction("keywords:nonsense")
    with pytest.raises(ValueError, match="unknown instruction"):
        evaluate("x", ["keywords:nonsense"], [{}])
    with pytest.raises(ValueError, match="2 instruction ids but 1 kwargs"):
        evaluate("x", ["punctuation:no_comma", "startend:quotation"], [{}])


def test_null_kwargs_are_ignored_as_in_hf_ifeval():
    """HF's IFEval rows carry every argument name, null where unused."""
    assert INSTRUCTIONS["punctuation:no_comma"].check("ok", keywords=None, num_words=None)


# ----------------------------------------------------------------- shipped prompts


def test_shipped_prompts_use_known_instructions_with_valid_kwargs():
    rows = [
        json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    assert len(rows) >= 40
    seen = set()
    for row in rows:
        sample = EvalSample.model_validate(row)
        meta = sample.metadata.model_extra
        assert meta["category"] == "ifeval" and sample.metadata.source == "tuneloop-reference", (
            sample.id
        )
        ids, kwargs = meta["instruction_id_list"], meta["kwargs"]
        assert len(ids) == len(kwargs) and len(set(ids)) == len(ids), sample.id
        for iid, kw in zip(ids, kwargs, strict=True):
            INSTRUCTIONS[iid].check("A dummy response.", **kw)  # raises on unknown id or bad kwargs
        evaluate("A dummy response.", ids, kwargs)
        get_scorer("ifeval_strict")(sample, Completion(text="A dummy response."))
        seen.update(ids)
    assert seen == set(INSTRUCTIONS)
    assert sum(len(r["metadata"]["instruction_id_list"]) > 1 for r in rows) >= 5
