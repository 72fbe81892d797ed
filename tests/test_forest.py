"""retrieval.forest: the shipped ranker exported as arrays scores as LightGBM does, and answers need no LightGBM."""

import json
import os
import subprocess
import sys

import lightgbm
import numpy as np
import pytest
from conftest import ROOT, dev_questions
from wenda.index.config import Settings
from wenda.retrieval import benchsets, ranker
from wenda.retrieval.forest import Forest, export
from wenda.retrieval.retriever import Retriever


@pytest.fixture(scope="module")
def booster() -> lightgbm.Booster:
    return lightgbm.Booster(model_file=str(ranker.RANKER_FILE))


@pytest.fixture(scope="module")
def real_rows(retriever: Retriever) -> list[np.ndarray]:
    """Candidate feature rows of real questions over the seed index: its own dev questions and CMRC questions
    it cannot answer (other score ranges), one matrix per question."""
    questions = [item["q"] for item in dev_questions()]
    questions += [item["question"] for item in benchsets.questions("cmrc")["cmrc"][:100]]
    return [retriever.analyze(q).matrix for q in questions]


def test_the_shipped_arrays_are_the_shipped_model(booster: lightgbm.Booster, real_rows: list[np.ndarray]) -> None:
    rows = np.vstack(real_rows)
    assert len(rows) >= 10_000
    shipped = ranker.shipped().forest
    assert np.abs(shipped.predict(rows) - booster.predict(rows, num_threads=1)).max() <= 1e-6
    for matrix in real_rows:  # and therefore the same ranking of every question
        library = booster.predict(matrix, num_threads=1)
        assert list(ranker.order(shipped.predict(matrix), matrix)) == list(ranker.order(library, matrix))


def test_missing_values_and_zeros_follow_lightgbm(tmp_path) -> None:  # noqa: ANN001
    """LightGBM's missing-value rules (NaN and zero as missing, default directions) on a model that learned them."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 4))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[rng.random(x.shape) < 0.1] = 0.0
    y = np.nan_to_num(x[:, 0]) * 2 - np.isnan(x[:, 1]) + (x[:, 2] == 0) + rng.normal(scale=0.1, size=len(x))
    for zero_as_missing in (False, True):
        params = {"objective": "regression", "num_leaves": 31, "verbose": -1, "zero_as_missing": zero_as_missing}
        trained = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=40)
        forest = export(trained)
        forest.save(tmp_path / "m.npz")
        again = Forest.load(tmp_path / "m.npz")
        assert np.abs(again.predict(x) - trained.predict(x)).max() <= 1e-9


def test_answering_imports_no_training_library(seed_settings: Settings) -> None:
    """A CLI question over the built seed index loads neither LightGBM, scikit-learn, scipy nor bm25s (the
    index's BM25 arrays are read with numpy), nor python jieba's dictionary (index/segmenter.py)."""
    code = (
        "import sys, runpy\n"
        "sys.argv = ['wenda', 'ask', '--json', '安阳2022年老旧小区改造项目的开工率是多少？']\n"
        "try:\n    runpy.run_module('wenda.bot.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'lightgbm', 'sklearn', 'scipy', 'bm25s'}\n"
        "import jieba\n"
        "print(sorted(heavy) + ['jieba dictionary'] * jieba.dt.initialized, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WENDA_CORPUS": str(seed_settings.corpus)}
    env["WENDA_INDEX_DIR"] = str(seed_settings.index_dir)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert json.loads(done.stdout)["results"], done.stdout[-500:]
    assert done.stderr.decode().strip().splitlines()[-1] == "[]"
