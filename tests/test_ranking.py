"""retrieval.features, ranker and confidence: the learned ranking over real candidates of the seed index."""

import numpy as np
from wenda.retrieval import confidence, features, ranker
from wenda.retrieval.retriever import Retriever


def test_feature_matrix_describes_every_candidate(retriever: Retriever) -> None:
    analysis = retriever.analyze("安阳市区营运出租车中有多少台纯电动车？")
    matrix = analysis.matrix
    assert matrix.shape == (len(analysis.candidates.ids), len(features.NAMES))
    assert np.isfinite(matrix).all()
    column = features.COLUMN
    assert matrix[:, column["dense_gap"]].max() == 0.0 and matrix[:, column["bm25_ratio"]].max() == 1.0
    assert ((0 <= matrix[:, column["coverage"]]) & (matrix[:, column["coverage"]] <= 1.0 + 1e-6)).all()
    # the index's off-topic probes put a question about its own content far above them
    assert matrix[:, column["dense_vs_probes"]].max() > 3


def test_shipped_models_match_the_features() -> None:
    assert tuple(ranker.shipped().meta["features"]) == features.NAMES
    assert tuple(confidence.shipped().data["features"]) == confidence.NAMES


def test_more_evidence_never_lowers_a_score(retriever: Retriever) -> None:
    """The ranker is monotone in its evidence features (what lets it transfer to unseen corpora)."""
    matrix = retriever.analyze("许昌开办企业要多久？").matrix
    better = matrix.copy()
    for name in ("dense", "bm25_ratio", "coverage", "sentence_coverage"):
        better[:, features.COLUMN[name]] += 0.05
    assert (ranker.shipped().score(better) >= ranker.shipped().score(matrix) - 1e-9).all()


def test_single_retriever_modes_rank_by_their_own_score(retriever: Retriever) -> None:
    for mode, name in (("dense", "dense"), ("bm25", None)):
        retriever.mode = mode
        try:
            analysis = retriever.analyze("清丰县2022年机关负责人出庭率")
        finally:
            retriever.mode = "hybrid"
        own = analysis.candidates.dense if name else analysis.candidates.lexical
        assert list(own[analysis.ranking]) == sorted(own, reverse=True)


def test_off_topic_questions_get_low_confidence(retriever: Retriever) -> None:
    on = retriever.ask("安阳市区营运出租车中有多少台纯电动车？", 3).confidence
    off = retriever.ask("怎样才能把红烧肉做得又香又软？", 3).confidence
    assert on > 0.5 > off
