"""`wenda serve`, the native API, against the real server process over HTTP: answers identical to
`wenda ask --json`, sources, passages in context, health, metrics, keys, limits, bad input, hot reload,
and a kill mid-request that loses nothing."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import copy_of, run_wenda, serve_env, serving, start_server, stop
from wenda.index.config import Settings

QUESTION = "安阳2022年老旧小区改造项目的开工率是多少？"
DOCUMENTS = Path(__file__).parent / "fixtures" / "documents"


@pytest.fixture(scope="module")
def server(seed_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, data folder) of a server on the seed index, without keys."""
    data_dir = tmp_path_factory.mktemp("serve-data")
    with serving(serve_env(seed_settings, data_dir)) as url:
        yield url, data_dir


@pytest.fixture(scope="module")
def keyed(seed_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that wants a key, allows 4 requests a minute per key and one cross-origin site."""
    env = serve_env(
        seed_settings,
        tmp_path_factory.mktemp("serve-keyed"),
        WENDA_API_KEYS="key-one, key-two",
        WENDA_SERVE_RATE_LIMIT="4",
        WENDA_SERVE_CORS_ORIGINS="https://chat.example.cn",
    )
    with serving(env) as url:
        yield url


def error_of(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


def test_ask_answers_exactly_as_the_cli(server: tuple[str, Path], seed_settings: Settings) -> None:
    url, _ = server
    answer = httpx.post(f"{url}/v1/ask", json={"question": QUESTION, "k": 3}, timeout=60).json()
    cli = run_wenda(
        "ask", "--json", "-k", "3", QUESTION, env=serve_env(seed_settings, Path("/nonexistent"))
    ).stdout.decode()
    assert answer == json.loads(cli)
    assert answer["answerable"] and "93.4%" in answer["answer"]["text"]


def test_history_makes_a_follow_up(server: tuple[str, Path]) -> None:
    url, _ = server
    body = {"question": "那襄阳呢？", "history": [QUESTION]}
    answer = httpx.post(f"{url}/v1/ask", json=body, timeout=60).json()
    assert answer["resolved"] and "襄阳" in answer["resolved"]


def test_sources_passages_health_and_metrics(server: tuple[str, Path]) -> None:
    url, _ = server
    listed = httpx.get(f"{url}/v1/sources").json()
    sources = listed["sources"]
    assert len(sources) == 5 and all(s["passages"] > 0 and s["format"] == "text" for s in sources)
    account = {entry["source"]: entry for entry in listed["files"]}  # the build account, as `wenda sources --json`
    assert set(account) == {s["source"] for s in sources}
    assert all(e["status"] == "indexed" and not e["ocr"] and e["reason"] is None for e in account.values())
    cited = httpx.post(f"{url}/v1/ask", json={"question": QUESTION, "k": 1}, timeout=60).json()["results"][0]
    citation = cited["citation"]
    context = httpx.get(f"{url}/v1/passages/{citation['source']}", params={"line": citation["line"], "around": 1})
    lines = context.json()["lines"]
    assert [line["line"] for line in lines] == [citation["line"] - 1, citation["line"], citation["line"] + 1]
    assert [line["cited"] for line in lines] == [False, True, False] and cited["text"] in lines[1]["text"]
    health = httpx.get(f"{url}/healthz").json()
    assert health["status"] == "ok" and health["chunks"] == 222 and health["generation"].startswith("gen-")
    metrics = httpx.get(f"{url}/metrics").text
    assert 'wenda_questions_total{endpoint="ask"}' in metrics and "wenda_question_seconds_bucket" in metrics


@pytest.mark.parametrize(
    "request_kwargs, status, field",
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "body"),
        ({"json": {"k": 3}}, 422, "question"),
        ({"json": {"question": QUESTION, "k": 0}}, 422, "k"),
        ({"json": {"question": QUESTION, "history": "not a list"}}, 422, "history"),
        ({"json": {"question": "？？？"}}, 422, "question"),
        ({"json": {"question": "问" * 5000}}, 422, "question"),
        ({"json": {"question": "问" * 100_000}}, 413, "body"),
        ({"content": b"x" * (10 * 2**20), "headers": {"content-type": "application/json"}}, 413, "body"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    server: tuple[str, Path], request_kwargs: dict, status: int, field: str
) -> None:
    url, _ = server
    response = httpx.post(f"{url}/v1/ask", timeout=60, **request_kwargs)
    assert response.status_code == status
    assert error_of(response)["field"] == field and "Traceback" not in response.text


def test_passages_errors_name_what_was_wrong(server: tuple[str, Path]) -> None:
    url, _ = server
    missing = httpx.get(f"{url}/v1/passages/nothere.txt", params={"line": 1})
    assert missing.status_code == 404 and error_of(missing)["field"] == "source"
    past = httpx.get(f"{url}/v1/passages/000_e771e9061456cf36.txt", params={"line": 9999})
    assert past.status_code == 422 and "past the end" in error_of(past)["message"]
    assert error_of(httpx.get(f"{url}/v1/passages/000_e771e9061456cf36.txt"))["field"] == "line"


def test_keys_rate_limit_and_cors(keyed: str) -> None:
    question = {"question": QUESTION, "k": 1}
    missing = httpx.post(f"{keyed}/v1/ask", json=question)
    assert missing.status_code == 401 and error_of(missing)["field"] == "authorization"
    wrong = httpx.post(f"{keyed}/v1/ask", json=question, headers={"Authorization": "Bearer key-three"})
    assert wrong.status_code == 401
    allowed = {"Authorization": "Bearer key-two", "Origin": "https://chat.example.cn"}
    answered = httpx.post(f"{keyed}/v1/ask", json=question, headers=allowed, timeout=60)
    assert answered.status_code == 200 and answered.headers["access-control-allow-origin"] == "https://chat.example.cn"
    other = httpx.get(f"{keyed}/v1/sources", headers={**allowed, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    statuses = [httpx.get(f"{keyed}/v1/sources", headers=allowed).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # 4 a minute for this key, one used by the question above
    limited = httpx.get(f"{keyed}/v1/sources", headers=allowed)
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert httpx.get(f"{keyed}/v1/sources", headers={"Authorization": "Bearer key-one"}).status_code == 200


def test_no_cross_origin_access_unless_configured(server: tuple[str, Path]) -> None:
    url, _ = server
    response = httpx.get(f"{url}/v1/sources", headers={"Origin": "https://chat.example.cn"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_refuses_to_listen_beyond_loopback_without_keys(seed_settings: Settings, tmp_path: Path) -> None:
    done = run_wenda("serve", "--host", "0.0.0.0", "--port", "0", env=serve_env(seed_settings, tmp_path))
    assert done.returncode == 2 and "refusing to listen on 0.0.0.0 without API keys" in done.stderr.decode()


def test_new_documents_are_answered_without_a_restart(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    env["WENDA_DATA_DIR"] = str(tmp_path / "data")
    with serving(env) as url:
        before = httpx.get(f"{url}/healthz").json()
        assert run_wenda("add", "-q", str(DOCUMENTS / "report.pdf"), env=env).returncode == 0
        answer = httpx.post(f"{url}/v1/ask", json={"question": "清河新区的地下综合管廊一共有多长？"}, timeout=60).json()
        assert answer["results"][0]["citation"]["source"] == "report.pdf"
        assert httpx.get(f"{url}/healthz").json()["generation"] != before["generation"]


def ask_and_lose(url: str) -> None:
    """A question whose answer never comes: the server is killed while it works on it."""
    try:
        httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60)
    except httpx.HTTPError:
        pass


def test_killed_mid_request_loses_no_feedback_and_serves_again(small_index: Path, tmp_path: Path) -> None:
    _, _, env = copy_of(small_index, tmp_path)
    env["WENDA_DATA_DIR"] = str(tmp_path / "data")
    process, url, _ = start_server(env)
    try:
        for vote in ("up", "down", "up"):
            body = {"question": "问题", "sources": ["a.txt:1"], "vote": vote}
            assert httpx.post(f"{url}/v1/feedback", json=body).json() == {"recorded": True}
        in_flight = threading.Thread(target=ask_and_lose, args=(url,), daemon=True)
        in_flight.start()
        process.send_signal(signal.SIGKILL)
        process.wait()
        in_flight.join(timeout=60)
    finally:
        stop(process)
    lines = (tmp_path / "data" / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["vote"] for line in lines] == ["up", "down", "up"]
    with serving(env) as url:
        assert httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60).status_code == 200


def test_sigterm_stops_it_cleanly(small_index: Path, tmp_path: Path) -> None:
    _, _, env = copy_of(small_index, tmp_path)
    process, url, log = start_server(env)
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert stop(process) == 0 and not any("Traceback" in line for line in log)


def test_wrong_keys_are_limited_per_address_with_retry_after(seed_settings: Settings, tmp_path: Path) -> None:
    """A guesser gets AUTH_FAILURES wrong keys a minute, then 429 before any key is compared, on every route."""
    from wenda.bot.web.service import AUTH_FAILURES

    with serving(serve_env(seed_settings, tmp_path, WENDA_API_KEYS="the-only-key")) as url:
        guess = {"Authorization": "Bearer guess-0001"}
        statuses = [httpx.get(f"{url}/v1/sources", headers=guess).status_code for _ in range(AUTH_FAILURES + 2)]
        assert statuses == [401] * AUTH_FAILURES + [429, 429]
        right = httpx.get(f"{url}/v1/sources", headers={"Authorization": "Bearer the-only-key"})
        assert right.status_code == 429 and 1 <= int(right.headers["retry-after"]) <= 60  # this address is guessing
        body = {"knowledge_id": "wenda", "query": "安阳", "retrieval_setting": {"top_k": 1, "score_threshold": 0}}
        dify = httpx.post(f"{url}/retrieval", json=body, headers=guess)
        assert dify.status_code == 429 and dify.json()["error_code"] == 429 and dify.headers["retry-after"]
