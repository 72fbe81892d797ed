"""Follow-up questions: complete a question that cannot stand alone from the conversation's previous turn.

No language model: the decision is made per turn from the question's own form and from the index.
- A question that names a place is self-contained, unless the place is all it says ("那襄阳呢?"): then it is
  the previous question asked for that place ("襄阳 开办企业要多久").
- A question with a pronoun or demonstrative ("这个项目…", "它…", "该县…"), or one of at most three topic
  words, carries the previous question's places and rarest words, but only when the index says they belong
  together: some passage matches both the question's words and the previous topic nearly as well as each
  does alone (BM25, measured per turn). A new topic finds no such passage, so history never drags it back
  to the old one; a longer question without a pronoun stands alone.
The completed text is what gets searched, and what front ends show ("按上文理解为：…"). The retriever also
searches a pronoun or BM25 completion alone when the completed question would be refused (retriever.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jieba
import numpy as np
from wenda.index.lexical import LexicalIndex
from wenda.index.store import ChunkRecord
from wenda.index.tokenization import to_simplified, tokenize

from .content import FILLER

# Words that ask rather than name: never carried as topic, never counted as what a question is about.
ASKING = re.compile(
    r"多少|几|什么|啥|哪|谁|多久|多长|多大|多快|多高|多远|何时|为何|如何|怎|是否|有没有|吗|呢"
    r"|^(how|what|which|when|where|who|whom|why|much|many)$"
)
# Pronouns and demonstratives pointing back at something named earlier; a closed grammatical class.
ANAPHOR = re.compile(
    r"[这那](个|些|所|家|种|次|项|条|位|里|儿|座|批|类|款|笔|片|名|份|栋|块|一)"
    r"|(?<!应)该(?=[\u4e00-\u9fff])|它|其中|(?<![尤极与])其(?![他它余实次间])|此(?![外前后时])|上述|前者|后者"
    r"|\b(it|its|this|these|those|they|them|their)\b",  # not "that", "there": relative, existential
    re.I,
)
# "那…呢?" and "…呢?" with nothing else: the ellipsis that asks the previous question again.
ELLIPSIS_FILLER = re.compile(r"^(那么|那|还有|再问|and|what about|how about)\s*|\s*(的|呢|呢吗|的呢)?\s*$", re.I)
PLACE = re.compile(r"[\u4e00-\u9fff]{1,8}?(?:省|市|县|区|州|镇|乡|旗|盟)")
PUNCTUATION = re.compile(r"[\s?？!！。,，、;；:：\"'“”‘’()（）]+")
# Both sides must keep at least this share of their best BM25 score in one passage for the previous topic to
# be carried into a question without a pronoun (dialogue follow-ups measure 0.6–1.0, new topics below 0.25:
# docs/quality.md, "Follow-ups").
COHERENCE = 0.5
ANAPHOR_COHERENCE = 0.25  # a pronoun says the question depends on something: a weaker match suffices
ELLIPTICAL_WORDS = 3  # a question without a pronoun needs this few topic words to be taken for a follow-up
# Topic words carried besides places: the rarest two. More pull the follow-up back to the passage that answered
# the previous question (dialogue recall@1: 2 words 0.88, 3 words 0.85, all 0.79; docs/quality.md).
SALIENT = 2


@dataclass(frozen=True)
class Resolution:
    """What gets searched for a turn: `text`; `completed` says it was completed from the previous turn."""

    text: str
    completed: bool = False
    kind: str = "standalone"  # standalone | place | anaphor | coherent
    place: str | None = None  # "那襄阳呢?": passages about this place come first (`prefer_place`)


def places_of(values: Iterable[str | None]) -> frozenset[str]:
    """Place names a corpus uses, from its documents' `place` metadata: "河南省濮阳市清丰县" gives 河南省,
    河南, 濮阳市, 濮阳, 清丰县, 清丰 (the short forms are how people ask)."""
    names: set[str] = set()
    for value in values:
        for part in PLACE.findall(to_simplified(value or "")):
            names.add(part)
            if len(part) > 2:
                names.add(part[:-1])
    return frozenset(names)


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[tuple[str, str], ...]:
    """jieba words of a normalized question with their part of speech (cached: chats repeat contexts)."""
    import jieba.posseg  # 0.5 s of part-of-speech table: only follow-ups need it, not every CLI question

    return tuple((w, f) for w, f in jieba.posseg.cut(text) if w.strip())


def places_in(text: str, places: frozenset[str]) -> list[str]:
    """Place names in a question: the corpus's own, and words jieba tags as places that end like one."""
    found = [w for w, f in _words(text) if w in places or (f == "ns" and PLACE.fullmatch(w))]
    return list(dict.fromkeys(found))


def topic_words(text: str, exclude: set[str]) -> list[str]:
    """The words of a question that name what it is about, in order: no asking words, filler or stopwords."""
    kept = [w for w, _ in _words(text) if not (w in exclude or ASKING.search(w) or w in FILLER or not tokenize(w))]
    return list(dict.fromkeys(kept))


def _search_tokens(words: Sequence[str]) -> list[str]:
    return [t for word in words for t in tokenize(word) if not ASKING.search(t)]


def coherence(lexical: LexicalIndex, question: Sequence[str], topic: Sequence[str]) -> float:
    """How well one passage matches both the question and the previous topic: the smaller of the two shares
    of their own best BM25 score kept by the passage that is best for both (0 when either matches nothing)."""
    own, carried = lexical.scores(_search_tokens(question)), lexical.scores(_search_tokens(topic))
    if len(own) == 0 or own.max() <= 0 or carried.max() <= 0:
        return 0.0
    own, carried = own / own.max(), carried / carried.max()
    best = int(np.argmax(own + carried))
    return float(min(own[best], carried[best]))


def resolve(question: str, previous: str | None, lexical: LexicalIndex, places: frozenset[str]) -> Resolution:
    """The question to search for this turn, given the previous turn's (already resolved) question."""
    if not previous:
        return Resolution(question)
    text = to_simplified(question)
    context = to_simplified(previous)
    named = places_in(text, places)
    own = topic_words(text, set())
    if named:
        if ELLIPSIS_FILLER.sub("", PUNCTUATION.sub("", text)) not in named:
            return Resolution(question)  # names its own place and says more: it stands alone
        rest = context
        for place in sorted(places_in(context, places), key=len, reverse=True):
            rest = rest.replace(place, " ")
        completed = " ".join([*named, PUNCTUATION.sub(" ", rest).strip()])
        return Resolution(completed, True, "place", named[0])
    topic = topic_words(context, set(own))
    if not topic:
        return Resolution(question)
    anaphor = bool(ANAPHOR.search(text))
    if not anaphor and len(own) > ELLIPTICAL_WORDS:
        return Resolution(question)  # says enough to stand alone
    if coherence(lexical, own, topic) < (ANAPHOR_COHERENCE if anaphor else COHERENCE):
        return Resolution(question)
    completed = " ".join([*salient(topic, lexical, places), PUNCTUATION.sub(" ", question).strip()])
    return Resolution(completed, True, "anaphor" if anaphor else "coherent")


def salient(topic: Sequence[str], lexical: LexicalIndex, places: frozenset[str]) -> list[str]:
    """The previous topic's places and its SALIENT rarest other words (IDF in this index), in their order."""
    others = [w for w in topic if w not in places]
    rarity = {w: float(lexical.idf(tokenize(w) or [w]).max()) for w in others}
    keep = set(sorted(others, key=lambda w: -rarity[w])[:SALIENT])
    return [w for w in topic if w in places or w in keep]


def prefer_place(ranking: np.ndarray, records: Sequence[ChunkRecord | None], place: str) -> np.ndarray:
    """`ranking` with the passages about `place` (its document's place or title, or its text, names it) moved
    first, keeping their order; unchanged when none is."""
    about = np.array(
        [r is not None and place in f"{r.place or ''} {r.title} {r.text}" for r in (records[i] for i in ranking)],
        dtype=bool,
    )
    if not about.any():
        return ranking
    return np.concatenate([ranking[about], ranking[~about]])


def resolve_history(history: Sequence[str], lexical: LexicalIndex, places: frozenset[str]) -> str | None:
    """The last turn of a conversation given as raw questions (oldest first), as it was understood."""
    previous = None
    for turn in history:
        if turn.strip():
            previous = resolve(turn, previous, lexical, places).text
    return previous


def warm_up() -> None:
    """Load jieba's part-of-speech model now (about a second) instead of on the first follow-up."""
    jieba.initialize()
    _words("许昌开办企业要多久")
