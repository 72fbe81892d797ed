"""index.metadata: fields an owner declares (sidecars, `[kb.NAME.metadata]` patterns) reach every citation of
the file and its filters, through the real build, the CLI and the server's Dify route; a bad declaration is
named and left out, the file still indexed."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import httpx
from conftest import RAW_CORPUS, run_wenda, serve_env, serving
from wenda.index.config import Settings
from wenda.index.metadata import Rule, clean, declared
from wenda.index.sources import source_info
from wenda.retrieval import filters
from wenda.retrieval.retriever import Retriever

YUNCHENG, QINGFENG = "004_253b461cd30454f2.txt", "003_71e5a5211310dfa3.txt"
QUESTION = "清丰县机关负责人出庭率是多少？"


def test_declarations_are_cleaned_and_layered() -> None:
    problems: list[str] = []
    fields = clean(
        {"tags": ["年报", "年报", " 政府 "], "date": datetime.date(2022, 3, 1), "pages": 12, "line": 3, "x": {"a": 1}},
        "f.meta.toml",
        problems.append,
    )
    assert fields == {"tags": ("年报", "政府"), "date": "2022-03-01", "pages": 12}
    assert len(problems) == 2 and "'line'" in problems[0] and "x must be" in problems[1]
    rules = (Rule("2022/*", (("tags", ("2022",)), ("kind", "report"))), Rule("*.pdf", (("kind", "scan"),)))
    assert declared("2022/a/b.pdf", rules, {"title": "T"}, {"tags": ("年报",), "kind": "final"}) == {
        "kind": "final",
        "title": "T",
        "tags": ["2022", "年报"],
    }
    assert declared("2021/b.txt", rules) == {}
    # a document's own tags (Markdown front matter) come first, the declared ones after
    info = source_info({"tags": ["年报", "财政"], "kind": "final"}, ["标题"], {"tags": ["财政", "统计"]}, "a.md")
    assert info.extra == {"tags": ["财政", "统计", "年报"], "kind": "final"} and info.title == "标题"


def test_sidecars_and_patterns_reach_citations_and_filters(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "east").mkdir(parents=True)
    shutil.copy(RAW_CORPUS / QINGFENG, corpus / "east" / QINGFENG)
    shutil.copy(RAW_CORPUS / YUNCHENG, corpus / YUNCHENG)
    sidecar = corpus / "east" / f"{QINGFENG}.meta.toml"
    sidecar.write_text('tags = ["法治"]\ndepartment = "司法局"\nyear = 2022\ndate = 2023-01-05\n', encoding="utf-8")
    (corpus / f"{YUNCHENG}.meta.toml").write_text("tags = [unclosed\n", encoding="utf-8")  # bad: left out
    (corpus / "gone.txt.meta.toml").write_text('tags = ["x"]\n', encoding="utf-8")  # describes no document
    (tmp_path / "wenda.toml").write_text(
        '[kb.local]\ncorpus = "corpus"\nindex = "index"\n\n'
        '[kb.local.metadata]\n"east/*" = { tags = ["河南"], region = "east" }\n',
        encoding="utf-8",
    )
    env = {"WENDA_CONFIG": str(tmp_path / "wenda.toml"), "WENDA_DATA_DIR": str(tmp_path / "data")}
    built = run_wenda("index", "--kb", "local", env=env)
    assert built.returncode == 0, built.stderr.decode()
    warnings = built.stderr.decode()
    assert f"{YUNCHENG}.meta.toml: not readable TOML" in warnings
    assert "gone.txt.meta.toml describes gone.txt" in warnings
    account = json.loads(run_wenda("sources", "--kb", "local", "--json", env=env).stdout)
    listed = {entry["source"] for entry in (account["files"] if isinstance(account, dict) else account)}
    assert listed == {f"east/{QINGFENG}", YUNCHENG}, "sidecars are metadata, not documents or skipped files"

    answer = json.loads(run_wenda("ask", "--kb", "local", "--json", "-k", "1", QUESTION, env=env).stdout)
    cited = answer["results"][0]["citation"]
    assert cited["source"] == f"east/{QINGFENG}" and cited["tags"] == ["河南", "法治"]
    assert cited["department"] == "司法局" and cited["year"] == 2022 and cited["region"] == "east"
    assert cited["date"] == "2023-01-05" and cited["line"] >= 1  # a declared date is the citation's date

    retriever = Retriever(Settings(corpus=corpus, index_dir=tmp_path / "index"))
    tagged = filters.predicate("and", [("tags", "contains", "法治"), ("year", "≥", 2020)])
    results = retriever.ask("运城的改革成效", 5, where=tagged).results
    assert results and {r.record.source for r in results} == {f"east/{QINGFENG}"}
    untagged = retriever.ask("运城的改革成效", 3, where=filters.predicate("and", [("tags", "empty", None)])).results
    assert results and {r.record.source for r in untagged} == {YUNCHENG}

    with serving(serve_env(Settings(corpus=corpus, index_dir=tmp_path / "index"), tmp_path / "serve")) as url:
        body = {
            "knowledge_id": "wenda",
            "query": "运城的改革成效",
            "retrieval_setting": {"top_k": 3, "score_threshold": 0.0},
            "metadata_condition": {"conditions": [{"name": ["tags"], "comparison_operator": "is", "value": "法治"}]},
        }
        records = httpx.post(f"{url}/retrieval", json=body, timeout=60).json()["records"]
        assert records and all(r["metadata"]["tags"] == ["河南", "法治"] for r in records)

    sidecar.write_text('tags = ["民生"]\n', encoding="utf-8")  # a changed sidecar: that file is read again
    rebuilt = run_wenda("index", "--kb", "local", env=env)
    assert rebuilt.returncode == 0 and "1 changed" in rebuilt.stdout.decode(), rebuilt.stdout.decode()
    again = json.loads(run_wenda("ask", "--kb", "local", "--json", "-k", "1", QUESTION, env=env).stdout)
    cited = again["results"][0]["citation"]
    assert cited["tags"] == ["河南", "民生"] and "department" not in cited
