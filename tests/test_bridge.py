"""retrieval.bridge: English words to Chinese terms through CC-CEDICT, filtered by the corpus vocabulary."""

from pathlib import Path

import pytest
from wenda.retrieval import bridge
from wenda.retrieval.bridge import translate
from wenda.retrieval.retriever import Retriever


def test_english_words_map_to_the_corpus_terms(retriever: Retriever) -> None:
    vocabulary = retriever.snapshot.lexical.vocabulary
    terms = translate("How many taxis in Anyang are electric?", vocabulary.__contains__)
    assert "出租车" in terms and "安阳" in terms
    assert all(term in vocabulary for term in terms)


def test_proper_names_do_not_replace_common_words() -> None:
    # "Old Chinese" is a CEDICT definition too, but "old" keeps its common meanings.
    terms = translate("old", lambda term: True)
    assert "上古汉语" not in terms and terms


def test_nothing_to_translate() -> None:
    assert translate("安阳出租车", lambda term: True) == []
    assert translate("the of and", lambda term: True) == []
    assert translate("xyzzyqwerty", lambda term: True) == []


def test_the_prebuilt_lexicon_is_the_built_one_and_a_damaged_file_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WENDA_MODEL_CACHE", str(tmp_path))
    bridge.lexicon.cache_clear()
    try:
        made = bridge.lexicon()  # no file yet: built from CC-CEDICT, then stored
        assert bridge.lexicon_file().parent == tmp_path and bridge.lexicon_file().exists()
        assert made == bridge.build_lexicon() and "出租车" in made["taxi"]
        stored = bridge.lexicon_file().read_bytes()
        bridge.lexicon_file().write_bytes(stored[: len(stored) // 2])  # truncated
        bridge.lexicon.cache_clear()
        assert bridge.lexicon() == made
        assert bridge.lexicon_file().read_bytes() == stored
    finally:
        bridge.lexicon.cache_clear()
