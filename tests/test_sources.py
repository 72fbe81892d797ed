"""index.sources: metadata from sources.toml, with the first line as a fallback title."""

import subprocess
import sys
from pathlib import Path
from unicodedata import normalize

import pytest
from wenda.index.errors import WendaError
from wenda.index.sources import OPENING_LINES, is_identifier, load_sources, source_info
from wenda.index.store import embedding_text

from tests.conftest import ROOT, SEED_CORPUS

SHARED_CORPUS = ROOT.parent / "shared" / "corpus"


def nfkc(text: str) -> str:
    return normalize("NFKC", text)


def test_seed_corpus_has_a_title_for_every_file() -> None:
    entries = load_sources(SEED_CORPUS)
    assert sorted(entries) == sorted(p.name for p in SEED_CORPUS.glob("*.txt"))
    assert all(entry["title"] for entry in entries.values())


def test_file_without_entry_is_titled_by_its_opening_heading() -> None:
    assert source_info(None, ["  改革风帆劲 奋楫新征程 ", "正文。"]).title == "改革风帆劲 奋楫新征程"
    # a first paragraph is no title: the file's name is cited instead, not 200 characters glued to every passage
    paragraph = "改革,一场继往开来的深刻革命,一条永不停歇的进取之路。去年以来,清丰县坚持以新思想为指导,全面深化改革。"
    assert source_info(None, [paragraph], None, "reports/清丰县改革综述.txt").title == "清丰县改革综述"
    assert source_info({"title": "T", "place": "运城市"}, ["x"]).place == "运城市"
    # an English title is two to three times longer in characters (MinerU's docx_01.docx in ../shared/realdocs)
    english = ["MinerU supports DOCX document parsing now", "MinerU支持docx解析了"]
    assert source_info(None, english, None, "docx_01.docx").title == english[0]
    sentence = "This report describes how the county reorganised its licensing offices in two years."
    assert source_info(None, [sentence], None, "report.docx").title == "report"


def test_the_raw_seed_articles_title_themselves_as_their_metadata_does() -> None:
    """Page headers and bylines are skipped, a dash-led subtitle joins its title; the place each article is
    about comes from the gazetteer, as its owner wrote it in sources.toml (the raw files have none)."""
    written = load_sources(SEED_CORPUS)
    found = {}
    for path in sorted(SHARED_CORPUS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        found[path.name] = source_info(None, text.splitlines()[:OPENING_LINES], None, path.name, text)
    for name in ("001_70904a6dfc86bffb.txt", "002_980ef8758a55a19d.txt", "004_253b461cd30454f2.txt"):
        assert nfkc(found[name].title) == nfkc(written[name]["title"])
    assert found["003_71e5a5211310dfa3.txt"].title == "003_71e5a5211310dfa3"  # it opens with body text
    places = {name: info.place for name, info in found.items()}
    assert places == {
        "000_e771e9061456cf36.txt": "河南省安阳市",
        "001_70904a6dfc86bffb.txt": "河南省许昌市",
        "002_980ef8758a55a19d.txt": "湖北省襄阳市",
        "003_71e5a5211310dfa3.txt": "河南省濮阳市清丰县",
        "004_253b461cd30454f2.txt": "山西省运城市",
    }


def test_a_file_name_of_numbers_and_digests_is_cited_but_never_embedded() -> None:
    assert is_identifier("003_71e5a5211310dfa3") and is_identifier("2020-05-01") and not is_identifier("年报2020")
    assert embedding_text(None, "003_71e5a5211310dfa3", None, "正文") == "\n正文"
    assert embedding_text("运城市", "改革综述", None, "正文") == "运城市 · 改革综述\n正文"


@pytest.mark.parametrize(
    "text, message", [("[a.txt\ntitle=", "not valid TOML"), ('["a.txt"]\nauthor = "x"', "unknown keys")]
)
def test_malformed_metadata_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "sources.toml").write_text(text, encoding="utf-8")
    with pytest.raises(WendaError, match=f"sources.toml.*{message}"):
        load_sources(tmp_path)


def test_a_hostile_file_name_is_judged_at_once() -> None:
    """File names are untrusted: the first pattern backtracked exponentially (2 s at 36 letters, hours at 60),
    and it runs for every chunk a build embeds. (A subprocess: the regex engine holds the GIL.)"""
    code = "from wenda.index.sources import is_identifier; print(is_identifier('a' * 60 + 'z'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert done.stdout.strip() == "False", done.stderr
