"""bot.web.admin: the management API against the real `wenda serve` process: off without WENDA_ADMIN_KEY, the
key, CSRF token and origin checked on every change, uploads refused with the reason or saved under a safe name,
builds run with progress and the new passages answered, knowledge bases created and deleted.
(tests/test_serve_page.py drives the page itself in a real browser.)"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
from conftest import RAW_CORPUS, run_wenda, serving

KEY = "admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
QINGFENG = "003_71e5a5211310dfa3.txt"
NEW_FACT = "星辰市的图书馆共有藏书十二万册，每周一闭馆。".encode()


def corpus_env(root: Path, **more: str) -> dict:
    (root / "corpus").mkdir(parents=True)
    shutil.copy(RAW_CORPUS / QINGFENG, root / "corpus")
    env = {
        "WENDA_CORPUS": str(root / "corpus"),
        "WENDA_INDEX_DIR": str(root / "index"),
        "WENDA_DATA_DIR": str(root / "data"),
        **more,
    }
    assert run_wenda("index", "-q", env=env).returncode == 0
    return env


def finished(url: str, kb: str) -> dict:
    for _ in range(240):
        build = httpx.get(f"{url}/admin/api/kbs/{kb}/build", headers=ADMIN).json()
        if build["state"] != "running":
            return build
        time.sleep(0.5)
    raise AssertionError(f"the build of {kb} did not finish")


def test_without_an_admin_key_there_is_no_management(tmp_path: Path) -> None:
    env = corpus_env(tmp_path)
    with serving(env) as url:
        assert httpx.get(f"{url}/admin").status_code == 404
        assert httpx.get(f"{url}/admin/api/kbs", headers=ADMIN).status_code == 404
    short = run_wenda("serve", "--port", "0", env={**env, "WENDA_ADMIN_KEY": "short"})
    assert short.returncode != 0 and "at least 16" in short.stderr.decode()


def test_changes_need_key_csrf_and_this_origin_and_uploads_are_checked(tmp_path: Path) -> None:
    env = corpus_env(tmp_path, WENDA_ADMIN_KEY=KEY)
    with serving(env) as url:
        page = httpx.get(f"{url}/admin")
        assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
        assert httpx.get(f"{url}/admin/api/kbs").status_code == 401
        assert (
            httpx.get(f"{url}/admin/api/kbs", headers={"Authorization": "Bearer wrong-key-0123456789"}).status_code
            == 401
        )
        listed = httpx.get(f"{url}/admin/api/kbs", headers=ADMIN).json()["kbs"]
        assert [(kb["name"], kb["files"], kb["status"]) for kb in listed] == [("default", 1, "ready")]
        assert listed[0]["documents"][0]["source"] == QINGFENG

        put = f"{url}/admin/api/kbs/default/files/"
        assert httpx.put(put + "new.txt", content=NEW_FACT, headers=ADMIN).status_code == 403  # no CSRF token
        csrf = {**ADMIN, "X-CSRF-Token": httpx.get(f"{url}/admin/api/session", headers=ADMIN).json()["csrf"]}
        elsewhere = {**csrf, "Origin": "http://evil.example"}
        assert httpx.put(put + "new.txt", content=NEW_FACT, headers=elsewhere).status_code == 403
        refused = httpx.put(put + "broken.pdf", content=b"%PDF-1.7\n" + b"\x00garbage" * 50, headers=csrf)
        assert refused.status_code == 422 and refused.json()["error"]["message"].startswith("broken.pdf: ")
        assert not (tmp_path / "corpus" / "broken.pdf").exists()
        saved = httpx.put(put + "..%2F..%2Fnew.txt", content=NEW_FACT, headers=csrf).json()
        assert saved["source"] == "new.txt" and (tmp_path / "corpus" / "new.txt").read_bytes() == NEW_FACT
        again = httpx.put(put + "copy.txt", content=NEW_FACT, headers=csrf)
        assert again.status_code == 422 and "new.txt" in again.json()["error"]["message"]  # the same content
        assert httpx.put(put + "big.txt", content=b"x" * (51 * 2**20), headers=csrf).status_code == 413

        assert httpx.post(f"{url}/admin/api/kbs/default/build", headers=csrf).status_code == 202
        build = finished(url, "default")
        assert build["state"] == "done" and "1 added" in build["message"] and build["embedded"] == build["to_embed"] > 0
        top = httpx.post(f"{url}/v1/ask", json={"question": "星辰市图书馆有多少藏书？", "k": 1}).json()["results"][0]
        assert top["citation"]["source"] == "new.txt"

        gone = httpx.delete(f"{url}/admin/api/kbs/default/files/..%2F..%2Fetc%2Fpasswd", headers=csrf)
        assert gone.status_code == 404
        assert httpx.delete(f"{url}/admin/api/kbs/default", headers=csrf).status_code == 409  # not created here

        created = httpx.post(f"{url}/admin/api/kbs", json={"name": "handbook", "title": "手册"}, headers=csrf)
        assert created.status_code == 201
        assert httpx.post(f"{url}/admin/api/kbs", json={"name": "handbook"}, headers=csrf).status_code == 409
        assert httpx.post(f"{url}/admin/api/kbs", json={"name": "../x"}, headers=csrf).status_code == 422
        assert [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]] == ["default", "handbook"]
        httpx.put(
            f"{url}/admin/api/kbs/handbook/files/rules.txt", content="手册规定每周五下午茶。".encode(), headers=csrf
        )
        httpx.post(f"{url}/admin/api/kbs/handbook/build", headers=csrf)
        assert finished(url, "handbook")["state"] == "done"
        body = {"question": "手册规定什么时候喝下午茶？", "kb": "handbook", "k": 1}
        assert httpx.post(f"{url}/v1/ask", json=body).json()["results"][0]["citation"]["source"] == "rules.txt"
        # a file that arrives while a build runs: asking again makes one more build follow, nothing is left out
        httpx.put(f"{url}/admin/api/kbs/handbook/files/more.txt", content="手册规定每周三开会。".encode(), headers=csrf)
        first = httpx.post(f"{url}/admin/api/kbs/handbook/build", headers=csrf).json()
        httpx.put(f"{url}/admin/api/kbs/handbook/files/late.txt", content="手册规定每月底盘点。".encode(), headers=csrf)
        second = httpx.post(f"{url}/admin/api/kbs/handbook/build", headers=csrf).json()
        assert first["state"] == "running" and second["state"] == "running"
        assert finished(url, "handbook")["state"] == "done"
        listed = {kb["name"]: kb for kb in httpx.get(f"{url}/admin/api/kbs", headers=ADMIN).json()["kbs"]}
        documents = {d["source"]: d["status"] for d in listed["handbook"]["documents"]}
        assert documents == {"rules.txt": "indexed", "more.txt": "indexed", "late.txt": "indexed"}
        assert httpx.delete(f"{url}/admin/api/kbs/handbook", headers=csrf).json() == {"deleted": "handbook"}
        assert httpx.post(f"{url}/v1/ask", json=body).status_code == 404
        assert not (tmp_path / "data" / "kb" / "handbook").exists()
    kb_list = run_wenda("kb", "list", "--json", env=env)  # what the page created and deleted, every command sees
    assert [row["name"] for row in json.loads(kb_list.stdout)] == ["default"]
