"""index.sources: metadata from sources.toml, with the first line as a fallback title."""

from pathlib import Path

import pytest
from wenda.index.errors import WendaError
from wenda.index.sources import load_sources, source_info

from tests.conftest import SEED_CORPUS


def test_seed_corpus_has_a_title_for_every_file() -> None:
    entries = load_sources(SEED_CORPUS)
    assert sorted(entries) == sorted(p.name for p in SEED_CORPUS.glob("*.txt"))
    assert all(entry["title"] for entry in entries.values())


def test_file_without_entry_is_titled_by_first_line() -> None:
    assert source_info(None, "  改革风帆劲 奋楫新征程 ").title == "改革风帆劲 奋楫新征程"
    # a first paragraph is no title: the file's name is cited instead, not 200 characters glued to every passage
    paragraph = "改革,一场继往开来的深刻革命,一条永不停歇的进取之路。去年以来,清丰县坚持以新思想为指导,全面深化改革。"
    assert source_info(None, paragraph, None, "reports/清丰县改革综述.txt").title == "清丰县改革综述"
    assert source_info({"title": "T", "place": "运城市"}, "x").place == "运城市"


@pytest.mark.parametrize(
    "text, message", [("[a.txt\ntitle=", "not valid TOML"), ('["a.txt"]\nauthor = "x"', "unknown keys")]
)
def test_malformed_metadata_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "sources.toml").write_text(text, encoding="utf-8")
    with pytest.raises(WendaError, match=f"sources.toml.*{message}"):
        load_sources(tmp_path)
