"""Knowledge bases (WENDA_CONFIG): two corpora in one deployment, each answering only from its own through the
CLI, the native API, OpenAI's chat completions (`model`) and Dify's retrieval (`knowledge_id`); unknown names
are refused naming the known ones; without a configuration everything is as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import run_wenda, serving, two_knowledge_bases

REFORM_FILE = "003_71e5a5211310dfa3.txt"  # 清丰县
REFORM_Q = "清丰县技术合同交易额完成了多少?"
CITY_Q = "清河新区的地下综合管廊一共有多长？"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A folder with wenda.toml declaring `reform` (a seed article) and `city` (a PDF report), both built."""
    root = tmp_path_factory.mktemp("kb")
    yield {"root": root, "env": two_knowledge_bases(root)}


def sources(reply: dict) -> set[str]:
    return {result["citation"]["source"] for result in reply["results"]}


def test_the_cli_answers_from_the_named_knowledge_base_only(deployment: dict) -> None:
    env = deployment["env"]
    reform = json.loads(run_wenda("ask", "--json", "--kb", "reform", REFORM_Q, env=env).stdout)
    city = json.loads(run_wenda("ask", "--json", "--kb", "city", REFORM_Q, env=env).stdout)
    assert sources(reform) == {REFORM_FILE} and sources(city) == {"report.pdf"}
    assert (deployment["root"] / "indexes" / "city").is_dir()  # `index` read from the file's folder
    assert (deployment["root"] / "data" / "kb" / "reform" / "index").is_dir()  # the default place
    unknown = run_wenda("ask", "--kb", "nope", REFORM_Q, env=env)
    assert unknown.returncode == 2 and "no knowledge base 'nope'" in unknown.stderr.decode()
    assert "reform, city" in unknown.stderr.decode()
    several = run_wenda("ask", REFORM_Q, env=env)
    assert several.returncode == 2 and "pick one with --kb NAME (reform, city)" in several.stderr.decode()
    listed = json.loads(run_wenda("kb", "list", "--json", env=env).stdout)
    assert [(row["name"], row["status"], row["files"]) for row in listed] == [
        ("reform", "ready", 1),
        ("city", "ready", 1),
    ]
    assert all(row["passages"] > 0 for row in listed)
    account = json.loads(run_wenda("sources", "--json", "--kb", "city", env=env).stdout)
    assert [entry["source"] for entry in account] == ["report.pdf"]


def test_every_route_answers_from_the_knowledge_base_it_names(deployment: dict) -> None:
    with serving(deployment["env"]) as url:
        models = httpx.get(f"{url}/v1/models").json()["data"]
        assert [model["id"] for model in models] == ["reform", "city"]
        assert models[1]["description"] == "清河市政府工作报告"

        listed = httpx.get(f"{url}/v1/sources", params={"kb": "city"}).json()
        assert [entry["source"] for entry in listed["files"]] == ["report.pdf"]
        assert [entry["source"] for entry in httpx.get(f"{url}/v1/sources").json()["files"]] == [REFORM_FILE]
        assert httpx.get(f"{url}/v1/sources", params={"kb": "nope"}).status_code == 404
        shown = httpx.get(f"{url}/v1/passages/report.pdf", params={"kb": "city", "page": 1, "line": 1}).json()
        assert shown["source"] == "report.pdf" and shown["lines"]
        native = httpx.post(f"{url}/v1/ask", json={"question": CITY_Q, "kb": "city"}).json()
        assert sources(native) == {"report.pdf"}
        first = httpx.post(f"{url}/v1/ask", json={"question": CITY_Q}).json()  # none named: the first
        assert sources(first) == {REFORM_FILE}
        unknown = httpx.post(f"{url}/v1/ask", json={"question": CITY_Q, "kb": "nope"})
        assert unknown.status_code == 404 and "'nope'" in unknown.json()["error"]["message"]
        assert "reform, city" in unknown.json()["error"]["message"]

        def chat(model: str) -> httpx.Response:
            body = {"model": model, "messages": [{"role": "user", "content": CITY_Q}]}
            return httpx.post(f"{url}/v1/chat/completions", json=body)

        answer = chat("city").json()
        assert {c["citation"]["source"] for c in answer["citations"]} == {"report.pdf"} and answer["model"] == "city"
        assert {c["citation"]["source"] for c in chat("reform").json()["citations"]} == {REFORM_FILE}
        missing = chat("gpt-4o")
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "model"
        assert "'gpt-4o'" in missing.json()["error"]["message"]

        def dify(knowledge: str, condition: dict | None = None) -> httpx.Response:
            body = {"knowledge_id": knowledge, "query": CITY_Q, "retrieval_setting": {"top_k": 3, "score_threshold": 0}}
            if condition:
                body["metadata_condition"] = condition
            return httpx.post(f"{url}/retrieval", json=body)

        records = dify("city").json()["records"]
        assert records and {record["metadata"]["source"] for record in records} == {"report.pdf"}
        assert all(record["metadata"]["page"] for record in records)
        assert {r["metadata"]["source"] for r in dify("reform").json()["records"]} == {REFORM_FILE}
        nothing = dify("wenda")
        assert nothing.status_code == 404 and nothing.json()["error_code"] == 2001
        page_one = {"logical_operator": "and", "conditions": [{"name": "page", "comparison_operator": "=", "value": 1}]}
        assert all(r["metadata"]["page"] == 1 for r in dify("city", page_one).json()["records"])


def test_without_a_configuration_the_single_corpus_is_default(seed_settings, tmp_path: Path) -> None:
    env = {
        "WENDA_CORPUS": str(seed_settings.corpus),
        "WENDA_INDEX_DIR": str(seed_settings.index_dir),
        "WENDA_DATA_DIR": str(tmp_path),
    }
    listed = json.loads(run_wenda("kb", "list", "--json", env=env).stdout)
    assert [(row["name"], row["status"]) for row in listed] == [("default", "ready")]
    assert run_wenda("ask", "--json", "--kb", "default", REFORM_Q, env=env).returncode == 0
    other = run_wenda("ask", "--kb", "reform", REFORM_Q, env=env)
    assert other.returncode == 2 and "only 'default'" in other.stderr.decode()


def test_a_key_limited_to_knowledge_bases_sees_only_those(deployment: dict, tmp_path: Path) -> None:
    config = tmp_path / "wenda.toml"
    text = (deployment["root"] / "wenda.toml").read_text(encoding="utf-8")
    text = text.replace('corpus = "', f'corpus = "{deployment["root"]}/').replace(
        'index = "', f'index = "{deployment["root"]}/'
    )
    config.write_text(text + '\n[keys.reader]\nkey = "reader-key-0001"\nkbs = ["city"]\n', encoding="utf-8")
    env = {**deployment["env"], "WENDA_CONFIG": str(config), "WENDA_API_KEYS": "admin-key-0001"}
    with serving(env) as url:
        reader, admin = ({"Authorization": f"Bearer {key}"} for key in ("reader-key-0001", "admin-key-0001"))
        assert [m["id"] for m in httpx.get(f"{url}/v1/models", headers=reader).json()["data"]] == ["city"]
        assert [m["id"] for m in httpx.get(f"{url}/v1/models", headers=admin).json()["data"]] == ["reform", "city"]
        first = httpx.post(f"{url}/v1/ask", json={"question": CITY_Q}, headers=reader).json()
        assert sources(first) == {"report.pdf"}  # naming none: the first it may use
        hidden = httpx.post(f"{url}/v1/ask", json={"question": CITY_Q, "kb": "reform"}, headers=reader)
        assert hidden.status_code == 404 and "this server has: city" in hidden.json()["error"]["message"]
        body = {"model": "reform", "messages": [{"role": "user", "content": CITY_Q}]}
        assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=reader).status_code == 404
        assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=admin).status_code == 200
        dify = {"knowledge_id": "reform", "query": CITY_Q, "retrieval_setting": {"top_k": 2, "score_threshold": 0}}
        refused = httpx.post(f"{url}/retrieval", json=dify, headers=reader)
        assert refused.status_code == 404 and refused.json()["error_code"] == 2001
        assert httpx.post(f"{url}/retrieval", json=dify, headers=admin).json()["records"]


def test_keys_limited_in_the_environment(deployment: dict) -> None:
    """WENDA_KB_KEYS, the environment's form of [keys.NAME]: the same scoping; a malformed or unknown entry
    stops the server with a message naming it."""
    env = {**deployment["env"], "WENDA_API_KEYS": "admin-key-0001", "WENDA_KB_KEYS": "city:env-reader-0001"}
    with serving(env) as url:
        reader = {"Authorization": "Bearer env-reader-0001"}
        assert [m["id"] for m in httpx.get(f"{url}/v1/models", headers=reader).json()["data"]] == ["city"]
        hidden = httpx.post(f"{url}/v1/ask", json={"question": CITY_Q, "kb": "reform"}, headers=reader)
        assert hidden.status_code == 404
    for value, message in (("city:short", "at least 8"), ("nowhere:env-reader-0001", "unknown knowledge bases")):
        done = run_wenda("serve", "--port", "0", env={**env, "WENDA_KB_KEYS": value})
        assert done.returncode != 0 and message in done.stderr.decode() and "Traceback" not in done.stderr.decode()
