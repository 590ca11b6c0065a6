"""Verifiable instructions (IFEval): 25 checks a program can decide, strict and loose.

The instruction ids, keyword arguments and check semantics follow Google's IFEval
(Zhou et al., 2023, ``instructions.py``), so a model's numbers here compare with
published ones up to the two places we could not copy a dependency:

- sentences are split with IFEval's own regex splitter (ported), words are ``\\w+``
  runs (IFEval: nltk's ``RegexpTokenizer(r"\\w+")``, the same), and capital words are
  ``\\w+`` runs that are upper case (IFEval: ``nltk.word_tokenize``, which splits
  "DON'T" as "DO" + "N'T" where we see "DON" + "T"; both count 2);
- the response language comes from :func:`detect_language`, a small script and
  stopword heuristic, not ``langdetect`` (see its docstring for the limits).

Usage::

    result = evaluate(response, ["punctuation:no_comma"], [{}])
    result.strict, result.loose          # [True], [True]

and, for a scorecard, the ``ifeval_strict`` / ``ifeval_loose`` scorers read
``instruction_id_list`` and ``kwargs`` from the sample's metadata, as in IFEval's
``input_data.jsonl``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tuneloop.data.records import EvalSample
from tuneloop.eval.scoring import Completion, Score, scorer

RELATIONS = ("less than", "at least")
CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")

# ----------------------------------------------------------------- argument types


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _words(name: str, value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(w, str) and w.strip() for w in value)
    ):
        raise TypeError(f"{name} must be a non-empty list of non-empty strings, got {value!r}")
    return value


def _relation(name: str, value: Any) -> str:
    if value not in RELATIONS:
        raise TypeError(f"{name} must be one of {RELATIONS}, got {value!r}")
    return value


def _letter(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or not value.isalpha():
        raise TypeError(f"{name} must be a single letter, got {value!r}")
    return value


def _language(name: str, value: Any) -> str:
    if value not in SUPPORTED_LANGUAGES:
        raise TypeError(
            f"{name} must be a supported language code {sorted(SUPPORTED_LANGUAGES)}, got {value!r}"
        )
    return value


def _compare(count: int, relation: str, threshold: int) -> bool:
    return count < threshold if relation == "less than" else count >= threshold


# ----------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Checker:
    """One instruction type: its IFEval id, its keyword arguments and its check."""

    id: str
    """IFEval's id, e.g. ``"keywords:existence"``."""
    params: dict[str, Callable[[str, Any], Any]]
    """Keyword argument -> validator (raises ``TypeError`` on a bad value); all required."""
    fn: Callable[..., bool]
    """``fn(response, **kwargs) -> bool`` on validated arguments."""

    def validate(self, kwargs: dict[str, Any] | None) -> dict[str, Any]:
        """Validated arguments; ``None`` values are dropped (HF's IFEval fills every key with null)."""
        given = {k: v for k, v in (kwargs or {}).items() if v is not None}
        for name in given:
            if name not in self.params:
                raise ValueError(
                    f"{self.id}: unexpected argument {name!r} (takes {sorted(self.params) or 'none'})"
                )
        out = {}
        for name, check in self.params.items():
            if name not in given:
                raise ValueError(f"{self.id}: missing argument {name!r}")
            try:
                out[name] = check(name, given[name])
            except TypeError as exc:
                raise ValueError(f"{self.id}: bad argument {exc}") from None
        return out

    def check(self, response: str, **kwargs: Any) -> bool:
        """Whether ``response`` follows the instruction (ValueError on bad arguments)."""
        return bool(self.fn(response, **self.validate(kwargs)))


INSTRUCTIONS: dict[str, Checker] = {}


def _instruction(
    id_: str, **params: Callable[[str, Any], Any]
) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    def register(fn: Callable[..., bool]) -> Callable[..., bool]:
        INSTRUCTIONS[id_] = Checker(id_, params, fn)
        return fn

    return register


def get_instruction(instruction_id: str) -> Checker:
    """The checker for ``instruction_id`` (ValueError naming it when unknown)."""
    if instruction_id not in INSTRUCTIONS:
        raise ValueError(
            f"unknown instruction {instruction_id!r}; known: {', '.join(sorted(INSTRUCTIONS))}"
        )
    return INSTRUCTIONS[instruction_id]


# ------------------------------------------------------------------ text helpers

_ALPHA = "([A-Za-z])"
_PREFIXES = "(Mr|St|Mrs|Ms|Dr)[.]"
_SUFFIXES = "(Inc|Ltd|Jr|Sr|Co)"
_STARTERS = r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s|However\s|That\s|This\s|Wherever)"
_ACRONYMS = "([A-Z][.][A-Z][.](?:[A-Z][.])?)"
_WEBSITES = "[.](com|net|org|io|gov|edu|me)"


def split_sentences(text: str) -> list[str]:
    """Sentences, by IFEval's regex splitter (abbreviations, decimals, URLs kept whole)."""
    text = " " + text.replace("\n", " ") + "  "
    text = re.sub(_PREFIXES, "\\1<prd>", text)
    text = re.sub(_WEBSITES, "<prd>\\1", text)
    text = re.sub("([0-9])[.]([0-9])", "\\1<prd>\\2", text)
    text = re.sub(r"\.{2,}", lambda m: "<prd>" * len(m.group(0)) + "<stop>", text)
    text = text.replace("Ph.D.", "Ph<prd>D<prd>")
    text = re.sub(r"\s" + _ALPHA + "[.] ", " \\1<prd> ", text)
    text = re.sub(_ACRONYMS + " " + _STARTERS, "\\1<stop> \\2", text)
    text = re.sub(
        _ALPHA + "[.]" + _ALPHA + "[.]" + _ALPHA + "[.]", "\\1<prd>\\2<prd>\\3<prd>", text
    )
    text = re.sub(_ALPHA + "[.]" + _ALPHA + "[.]", "\\1<prd>\\2<prd>", text)
    text = re.sub(" " + _SUFFIXES + "[.] " + _STARTERS, " \\1<stop> \\2", text)
    text = re.sub(" " + _SUFFIXES + "[.]", " \\1<prd>", text)
    text = re.sub(" " + _ALPHA + "[.]", " \\1<prd>", text)
    text = (
        text.replace(".\u201d", "\u201d.")
        .replace('."', '".')
        .replace('!"', '"!')
        .replace('?"', '"?')
    )
    for mark in ".?!":
        text = text.replace(mark, mark + "<stop>")
    sentences = [s.strip() for s in text.replace("<prd>", ".").split("<stop>")]
    if sentences and not sentences[-1]:
        sentences = sentences[:-1]
    return sentences


def count_words(text: str) -> int:
    """Runs of word characters (IFEval's ``RegexpTokenizer(r"\\w+")``)."""
    return len(re.findall(r"\w+", text))


# ---------------------------------------------------------------- language guess

_SCRIPTS: list[tuple[str, str]] = [
    ("ja", "\u3040-\u30ff"),  # kana first: Japanese text also uses Han characters
    ("ko", "\uac00-\ud7af\u1100-\u11ff"),
    ("zh", "\u4e00-\u9fff\u3400-\u4dbf"),
    ("ar", "\u0600-\u06ff\u0750-\u077f"),
    ("hi", "\u0900-\u097f"),
    ("bn", "\u0980-\u09ff"),
    ("pa", "\u0a00-\u0a7f"),
    ("gu", "\u0a80-\u0aff"),
    ("ta", "\u0b80-\u0bff"),
    ("te", "\u0c00-\u0c7f"),
    ("kn", "\u0c80-\u0cff"),
    ("ml", "\u0d00-\u0d7f"),
    ("th", "\u0e00-\u0e7f"),
    ("he", "\u0590-\u05ff"),
    ("el", "\u0370-\u03ff"),
    ("ru", "\u0400-\u04ff"),
]
_STOPWORDS: dict[str, set[str]] = {
    "en": set(
        "the and of to is in that it was for on are with as be this have not you they at by from or but what all were".split()
    ),
    "fr": set(
        "le la les et des est une un du que qui dans pour pas sur au avec ce sont il elle nous vous mais aux cette".split()
    ),
    "de": set(
        "der die das und ist nicht ein eine zu den mit von sich des auf für im dem auch es wir sie ich aber".split()
    ),
    "es": set(
        "el la los las y de que en un una es por con para no se del al lo como más pero sus su muy".split()
    ),
    "it": set(
        "il lo la gli le e di che è un una per non sono con del della anche come ma più nel alla questo".split()
    ),
    "pt": set(
        "o a os as e de que em um uma é não para com do da dos das se no na mas por muito você".split()
    ),
    "nl": set(
        "de het een en van is dat niet ik te op zijn voor met die er maar ook als aan wij hij bij".split()
    ),
    "pl": set("i w nie na się z że do jest to jak ale co tak od po dla są przez może jego".split()),
    "fi": set(
        "ja on ei se että oli hän ovat mutta kun myös tai mitä niin joka ole tämä vain".split()
    ),
    "sw": set("na ya wa kwa ni za la katika hii kama lakini sana watu pia wao yake huo".split()),
    "vi": set("và của là có không một những được trong cho người các này với đã khi thì".split()),
}
SUPPORTED_LANGUAGES = frozenset(
    {code for code, _ in _SCRIPTS} | set(_STOPWORDS) | {"uk", "bg", "fa", "ur"}
)


def detect_language(text: str) -> str | None:
    """Best-guess ISO 639-1 code of ``text``, or None when nothing is recognisable.

    A stand-in for ``langdetect`` (not a dependency): the script decides for non-Latin
    text (the most frequent script wins; any kana means Japanese; Cyrillic is split into
    ru/uk/bg and Arabic script into ar/fa/ur by letters unique to each), and for Latin
    text the language with most stopword hits wins. Limits: Devanagari is always Hindi
    (never Marathi or Nepali); Latin languages outside en/fr/de/es/it/pt/nl/pl/fi/sw/vi
    come out as whichever of those shares most short words; a text with no stopword
    (one word, a list of names, code) returns None; mixed-language text returns its
    majority language only roughly.
    """
    counts = {code: len(re.findall(f"[{chars}]", text)) for code, chars in _SCRIPTS}
    if counts["ja"]:
        return "ja"
    latin = len(re.findall(r"[A-Za-z\u00c0-\u024f]", text))
    code, n = max(counts.items(), key=lambda kv: kv[1])
    if n and n >= latin:
        if code == "ru":
            return (
                "uk"
                if re.search("[іїєґІЇЄҐ]", text)
                else "ru"
                if re.search("[ыэёЫЭЁ]", text)
                else "bg"
                if re.search("[ъЪ]", text)
                else "ru"
            )
        if code == "ar":
            return (
                "ur"
                if re.search("[ٹڈڑںےھ]", text)
                else "fa"
                if re.search("[پچژگکی]", text)
                else "ar"
            )
        return code
    words = re.findall(r"[^\W\d_]+", text.lower())
    hits = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(hits, key=lambda lang: hits[lang])
    return best if hits[best] else None


def _in_language(text: str, language: str) -> bool:
    # IFEval counts an undetectable response as following (langdetect raises on it).
    found = detect_language(text)
    return found is None or found == language


# ------------------------------------------------------------------- the checks


@_instruction("keywords:existence", keywords=_words)
def _existence(response: str, keywords: list[str]) -> bool:
    return all(re.search(re.escape(k), response, flags=re.IGNORECASE) for k in keywords)


@_instruction("keywords:frequency", keyword=_str, frequency=_int, relation=_relation)
def _frequency(response: str, keyword: str, frequency: int, relation: str) -> bool:
    return _compare(
        len(re.findall(re.escape(keyword), response, flags=re.IGNORECASE)), relation, frequency
    )


@_instruction("keywords:forbidden_words", forbidden_words=_words)
def _forbidden(response: str, forbidden_words: list[str]) -> bool:
    return not any(
        re.search(r"\b" + re.escape(w) + r"\b", response, flags=re.IGNORECASE)
        for w in forbidden_words
    )


@_instruction(
    "keywords:letter_frequency", letter=_letter, let_frequency=_int, let_relation=_relation
)
def _letter_frequency(response: str, letter: str, let_frequency: int, let_relation: str) -> bool:
    return _compare(response.lower().count(letter.lower()), let_relation, let_frequency)


@_instruction("language:response_language", language=_language)
def _response_language(response: str, language: str) -> bool:
    return _in_language(response, language)


@_instruction("length_constraints:number_sentences", num_sentences=_int, relation=_relation)
def _number_sentences(response: str, num_sentences: int, relation: str) -> bool:
    return _compare(len(split_sentences(response)), relation, num_sentences)


@_instruction("length_constraints:number_paragraphs", num_paragraphs=_int)
def _number_paragraphs(response: str, num_paragraphs: int) -> bool:
    # Paragraphs are separated by the markdown divider ***; an empty one inside fails.
    parts = re.split(r"\s?\*\*\*\s?", response)
    count = len(parts)
    for i, part in enumerate(parts):
        if not part.strip():
            if i in (0, len(parts) - 1):
                count -= 1
            else:
                return False
    return count == num_paragraphs


@_instruction("length_constraints:number_words", num_words=_int, relation=_relation)
def _number_words(response: str, num_words: int, relation: str) -> bool:
    return _compare(count_words(response), relation, num_words)


@_instruction(
    "length_constraints:nth_paragraph_first_word",
    num_paragraphs=_int,
    nth_paragraph=_int,
    first_word=_str,
)
def _nth_paragraph_first_word(
    response: str, num_paragraphs: int, nth_paragraph: int, first_word: str
) -> bool:
    paragraphs = re.split(r"\n\n", response)
    count = sum(1 for p in paragraphs if p.strip())
    if not 1 <= nth_paragraph <= count:
        return False
    paragraph = paragraphs[nth_paragraph - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    first = re.split(r"""[.,?!'"]""", word)[0].lower()
    return count == num_paragraphs and first == first_word.lower()


@_instruction("detectable_content:number_placeholders", num_placeholders=_int)
def _placeholders(response: str, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= num_placeholders


@_instruction("detectable_content:postscript", postscript_marker=_str)
def _postscript(response: str, postscript_marker: str) -> bool:
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker.lower()) + r".*$"
    return bool(re.findall(pattern, response.lower(), flags=re.MULTILINE))


@_instruction("detectable_format:number_bullet_lists", num_bullets=_int)
def _bullets(response: str, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


@_instruction("detectable_format:constrained_response")
def _constrained(response: str) -> bool:
    return any(option in response.strip() for option in CONSTRAINED_OPTIONS)


@_instruction("detectable_format:number_highlighted_sections", num_highlights=_int)
def _highlights(response: str, num_highlights: int) -> bool:
    found = re.findall(r"\*[^\n\*]*\*", response) + re.findall(r"\*\*[^\n\*]*\*\*", response)
    return sum(1 for h in found if h.strip("*").strip()) >= num_highlights


@_instruction("detectable_format:multiple_sections", section_spliter=_str, num_sections=_int)
def _sections(response: str, section_spliter: str, num_sections: int) -> bool:
    pattern = r"\s?" + re.escape(section_spliter.strip()) + r"\s?\d+\s?"
    return len(re.split(pattern, response)) - 1 >= num_sections


@_instruction("detectable_format:json_format")
def _json(response: str) -> bool:
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@_instruction("detectable_format:title")
def _title(response: str) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


@_instruction("combination:two_responses")
def _two_responses(response: str) -> bool:
    parts = response.split("******")
    kept = []
    for i, part in enumerate(parts):
        if part.strip():
            kept.append(part.strip())
        elif i not in (0, len(parts) - 1):
            return False
    return len(kept) == 2 and kept[0] != kept[1]


@_instruction("combination:repeat_prompt", prompt_to_repeat=_str)
def _repeat_prompt(response: str, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


@_instruction("startend:end_checker", end_phrase=_str)
def _end_checker(response: str, end_phrase: str) -> bool:
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


@_instruction(
    "change_case:capital_word_frequency", capital_frequency=_int, capital_relation=_relation
)
def _capital_words(response: str, capital_frequency: int, capital_relation: str) -> bool:
    capitals = [w for w in re.findall(r"\w+", response) if w.isupper()]
    return _compare(len(capitals), capital_relation, capital_frequency)


@_instruction("change_case:english_capital")
def _english_capital(response: str) -> bool:
    return response.isupper() and _in_language(response, "en")


@_instruction("change_case:english_lowercase")
def _english_lowercase(response: str) -> bool:
    return response.islower() and _in_language(response, "en")


@_instruction("punctuation:no_comma")
def _no_comma(response: str) -> bool:
    return "," not in response


@_instruction("startend:quotation")
def _quotation(response: str) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


# ---------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class IFEvalResult:
    """Per-instruction outcomes for one response, in the order of the instruction ids."""

    strict: list[bool]
    loose: list[bool]

    @property
    def prompt_strict(self) -> bool:
        return all(self.strict)

    @property
    def prompt_loose(self) -> bool:
        return all(self.loose)


def loose_variants(response: str) -> list[str]:
    """IFEval's 8 loose variants: as is / first line / last line / both dropped, each with and without ``*``."""
    lines = response.split("\n")
    cut = [
        response,
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return cut + [r.replace("*", "") for r in cut]


def _checked(
    instruction_ids: Sequence[str], kwargs_list: Sequence[dict[str, Any] | None]
) -> list[tuple[Checker, dict]]:
    if len(instruction_ids) != len(kwargs_list):
        raise ValueError(
            f"{len(instruction_ids)} instruction ids but {len(kwargs_list)} kwargs entries"
        )
    return [
        (get_instruction(i), get_instruction(i).validate(kw))
        for i, kw in zip(instruction_ids, kwargs_list, strict=True)
    ]


def evaluate(
    response: str, instruction_ids: Sequence[str], kwargs_list: Sequence[dict[str, Any] | None]
) -> IFEvalResult:
    """Check ``response`` against each instruction, strictly and loosely (ValueError on bad input).

    Strict: the response as given. Loose: any of :func:`loose_variants` passes. An
    empty (or whitespace) response or variant never passes, as in IFEval.
    """
    checked = _checked(instruction_ids, kwargs_list)
    variants = loose_variants(response)
    strict = [bool(response.strip()) and bool(c.fn(response, **kw)) for c, kw in checked]
    loose = [any(v.strip() and c.fn(v, **kw) for v in variants) for c, kw in checked]
    return IFEvalResult(strict=strict, loose=loose)


def prompt_level_accuracy(results: Sequence[IFEvalResult], *, loose: bool = False) -> float:
    """Share of prompts whose instructions all pass (0.0 for no prompts)."""
    if not results:
        return 0.0
    return sum(all(r.loose if loose else r.strict) for r in results) / len(results)


def instruction_level_accuracy(results: Sequence[IFEvalResult], *, loose: bool = False) -> float:
    """Share of all instructions, pooled over prompts, that pass (0.0 for none)."""
    flags = [f for r in results for f in (r.loose if loose else r.strict)]
    return sum(flags) / len(flags) if flags else 0.0


def accuracy_summary(results: Sequence[IFEvalResult]) -> dict[str, float]:
    """IFEval's four headline numbers: prompt/instruction level, strict/loose."""
    return {
        "prompt_strict": prompt_level_accuracy(results),
        "prompt_loose": prompt_level_accuracy(results, loose=True),
        "instruction_strict": instruction_level_accuracy(results),
        "instruction_loose": instruction_level_accuracy(results, loose=True),
    }


def instruction_level_from_scores(scores: Sequence[Score]) -> float:
    """Instruction-level accuracy from ``ifeval_strict``/``ifeval_loose`` scores (their ``followed`` lists)."""
    flags = [f for s in scores for f in s.metadata["followed"]]
    return sum(flags) / len(flags) if flags else 0.0


def _sample_instructions(sample: EvalSample) -> tuple[list[str], list[dict[str, Any]]]:
    extra = sample.metadata.model_extra or {}
    ids, kwargs = extra.get("instruction_id_list"), extra.get("kwargs")
    if not isinstance(ids, list) or not ids:
        raise ValueError(
            f"sample {sample.id!r}: metadata.instruction_id_list must be a non-empty list"
        )
    if kwargs is None:
        kwargs = [{} for _ in ids]
    if not isinstance(kwargs, list):
        raise ValueError(f"sample {sample.id!r}: metadata.kwargs must be a list of objects")
    return ids, kwargs


def _score(sample: EvalSample, completion: Completion, mode: str) -> Score:
    ids, kwargs = _sample_instructions(sample)
    try:
        result = evaluate(completion.text, ids, kwargs)
    except ValueError as exc:
        raise ValueError(f"sample {sample.id!r}: {exc}") from None
    followed = result.loose if mode == "loose" else result.strict
    failed = [i for i, ok in zip(ids, followed, strict=True) if not ok]
    why = (
        f"all {len(ids)} instructions followed"
        if not failed
        else "not followed: " + ", ".join(failed)
    )
    return Score.binary(
        all(followed), why, mode=mode, instruction_id_list=list(ids), followed=followed
    )


@scorer("ifeval_strict")
def ifeval_strict(sample: EvalSample, completion: Completion) -> Score:
    """1 when every instruction in ``metadata.instruction_id_list`` passes on the response as given."""
    return _score(sample, completion, "strict")


@scorer("ifeval_loose")
def ifeval_loose(sample: EvalSample, completion: Completion) -> Score:
    """1 when every instruction passes on at least one of IFEval's loose variants of the response."""
    return _score(sample, completion, "loose")
