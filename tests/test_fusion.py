"""retrieval.fusion: score combination and how much the lexical side is trusted."""

import numpy as np

from retrieval.candidates import Candidates
from retrieval.fusion import fuse, lexical_trust, zscore


def candidates(dense, lexical, known=(True, True), idf=(1.0, 3.0)) -> Candidates:
    return Candidates(
        np.arange(len(dense)),
        np.array(dense, np.float32),
        np.array(lexical, np.float32),
        ["a", "b"][: len(known)],
        np.array(idf[: len(known)]),
        np.array(known, bool),
    )


def test_zscore_of_constant_is_zero() -> None:
    assert zscore(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]
    assert np.allclose(zscore(np.array([1.0, 3.0])), [-1.0, 1.0])


def test_lexical_trust_is_idf_share_of_known_words() -> None:
    assert lexical_trust(candidates([0.8, 0.7], [0, 0], known=(False, False))) == 0.0
    assert lexical_trust(candidates([0.8, 0.7], [0, 1], known=(False, True))) == 0.75


def test_modes() -> None:
    c = candidates([0.90, 0.80, 0.85], [0.0, 9.0, 1.0])
    assert np.argmax(fuse(c, "dense")) == 0 and np.argmax(fuse(c, "bm25")) == 1
    unknown = candidates([0.90, 0.80, 0.85], [0.0, 9.0, 1.0], known=(False, False))
    assert np.array_equal(np.argsort(fuse(unknown)), np.argsort(c.dense))  # English question: dense decides
