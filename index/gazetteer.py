"""The places a document is about, from China's administrative divisions (provinces, cities, counties).

Local reports rarely name their own place in a sentence ("我市", "全县"), but they name it, its counties and
its province often; a user asks "安阳……多少?" and expects the passages of the Anyang report, not every
report's. The gazetteer is cpca's table of the 3,500 divisions with their codes (MIT, from the Ministry of
Civil Affairs' codes), read as a file: cpca itself (and pandas) is never imported. Names are found with an
Aho-Corasick automaton (pyahocorasick), full names and, for provinces, cities and counties, the short form
people write ("安阳" for 安阳市); district short forms ("和平", "鼓楼") are words too often to count.

A document's place is found by walking down the hierarchy from the province with the most mentions (its
own, its cities' and counties'), into the child that holds at least half of them, so a report on Anyang that
also names its counties and its province is about "河南省安阳市", and one that names many cities evenly is
about the province, or nothing when no division dominates.
"""

from __future__ import annotations

import csv
import importlib.util
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ahocorasick

from .segmenter import cut
from .tokenization import normalize

# Suffixes whose removal leaves the name people write, longest first; only for these levels (see above).
SHORT_SUFFIXES = (
    "特别行政区",
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "自治州",
    "地区",
    "省",
    "市",
    "县",
    "盟",
)
MIN_MENTIONS = 2  # a place named once is mentioned, not what the document is about
DOMINANT = 0.5  # a child holds at least this share of its parent's mentions to be the document's place
# A short form that the dictionary knows as an ordinary word ("合作" for 合作市, "大方" for 大方县) is not a place.
WORD_TAGS = {"v", "vn", "vd", "n", "a", "ad", "an", "d", "m", "q", "r", "p", "c", "u", "t", "f", "s", "l", "i", "b"}
BOUNDARY_WINDOW = 4  # characters either side of a short form that jieba segments to check it is a word there
WEAK = {"城区", "郊区", "矿区", "新区", "市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}


@dataclass(frozen=True)
class Division:
    code: str  # 12 digits: province (2), city (2), county (2), then zeros
    name: str

    @property
    def ancestors(self) -> tuple[str, ...]:
        """Codes of the city and province above it, nearest first (some do not exist: 北京's 市辖区)."""
        code = self.code
        if code[4:6] != "00":
            return code[:4] + "0" * 8, code[:2] + "0" * 10
        if code[2:4] != "00":
            return (code[:2] + "0" * 10,)
        return ()


def table_path() -> Path:
    """cpca's division table, located without importing cpca (whose import loads pandas)."""
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package is missing: pip install cpca==0.5.5")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "adcodes.csv"


@lru_cache(maxsize=1)
def gazetteer() -> tuple[dict[str, Division], ahocorasick.Automaton]:
    """Divisions by code, and an automaton from every name form to the codes it may mean."""
    divisions: dict[str, Division] = {}
    with table_path().open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = row["name"].strip()
            if name and name not in WEAK:
                divisions[row["adcode"]] = Division(row["adcode"], name)
    forms: dict[str, set[str]] = defaultdict(set)
    short: set[str] = set()
    import jieba.posseg  # 0.2 s of dictionary: only when a build reads a document

    tags = jieba.posseg.dt.word_tag_tab
    for code, division in divisions.items():
        forms[division.name].add(code)
        if division.name.endswith("区") and code[4:6] != "00":
            continue  # districts: full names only
        for suffix in SHORT_SUFFIXES:
            if division.name.endswith(suffix) and len(division.name) - len(suffix) >= 2:
                form = division.name[: -len(suffix)]
                if tags.get(form) not in WORD_TAGS:
                    forms[form].add(code)
                    short.add(form)
                break
    full_names = {division.name for division in divisions.values()}
    automaton = ahocorasick.Automaton()
    for form, codes in forms.items():
        checked = form in short and form not in full_names  # "滑县" is a full name: always a place
        automaton.add_word(form, (len(form), tuple(sorted(codes)), checked))
    automaton.make_automaton()
    return divisions, automaton


def is_word_at(text: str, start: int, end: int) -> bool:
    """Whether jieba segments text[start:end] as a word of its own (not "达州" inside "明尼苏达州")."""
    left = max(0, start - BOUNDARY_WINDOW)
    window = text[left : end + BOUNDARY_WINDOW]
    cuts, position = {0}, 0
    for token in cut(window):
        position += len(token)
        cuts.add(position)
    return start - left in cuts and end - left in cuts


def mentions(text: str) -> Counter[str]:
    """Mentions of each division in `text`: longest match wins where names overlap ("安阳市" not "安阳");
    a name several divisions share counts for each of them, split evenly."""
    text = normalize(text)
    divisions, automaton = gazetteer()
    found: list[tuple[int, int, tuple[str, ...]]] = []
    for end, (length, codes, short) in automaton.iter(text):
        start = end - length + 1
        if not short or is_word_at(text, start, end + 1):
            found.append((start, end + 1, codes))
    found.sort(key=lambda hit: (hit[0], -(hit[1] - hit[0])))
    counts: Counter[str] = Counter()
    reached = 0
    for start, end, codes in found:
        if start < reached:
            continue
        reached = end
        for code in codes:
            counts[code] += 1 / len(codes)
    return counts


def place_of(text: str) -> str | None:
    """The division the text is about, as its chain of names ("河南省安阳市"), or None."""
    divisions, _ = gazetteer()
    counts = mentions(text)
    subtree: Counter[str] = Counter()
    children: dict[str | None, set[str]] = defaultdict(set)
    for code, count in counts.items():
        node: str | None = code
        while node is not None:
            subtree[node] += count
            parent = next((up for up in divisions[node].ancestors if up in divisions), None)
            children[parent].add(node)
            node = parent
    chain: list[str] = []
    level, total = None, sum(subtree[code] for code in children[None])
    while children[level]:
        best = max(children[level], key=lambda code: (subtree[code], code))
        if subtree[best] < MIN_MENTIONS or subtree[best] < DOMINANT * total:
            break
        chain.append(divisions[best].name)
        level, total = best, subtree[best]
    return "".join(chain) or None
