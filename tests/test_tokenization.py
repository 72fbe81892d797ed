"""index.tokenization: normalization and jieba segmentation for BM25."""

from wenda.index.tokenization import normalize, stem, to_simplified, tokenize


def test_normalize_folds_width_script_and_case() -> None:
    assert to_simplified("運城ＡＢＣ１２３，") == "运城ABC123,"
    assert normalize("運城ＡＢＣ") == "运城abc"


def test_tokenize_splits_chinese_into_words_not_one_run() -> None:
    tokens = tokenize("運城建成了多少個嵌入式養老機構？")
    assert {"运城", "养老", "机构"} <= set(tokens)
    assert "运城建成了多少个嵌入式养老机构" not in tokens


def test_tokenize_drops_stopwords_and_punctuation() -> None:
    tokens = tokenize("这是什么？！…… the Electric taxis、")
    assert "是" not in tokens and "什么" not in tokens and "the" not in tokens
    assert all(any(ch.isalnum() for ch in t) for t in tokens)
    assert "electr" in tokens and "taxi" in tokens  # stemmed: "electrical", "taxi" meet them


def test_english_words_are_stemmed_so_inflections_meet() -> None:
    """unstructured's fake.odt in ../shared/realdocs: "Who are listed as leaders" against a table row "Leader"."""
    assert sorted(tokenize("Who are listed as leaders in the schedule?")) == sorted(tokenize("Leader list schedules"))
    assert stem("running") == "run" and stem("改革") == "改革" and stem("x86") == "x86"
