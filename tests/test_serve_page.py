"""The web chat page that `wenda serve` returns at `/`, in a real browser: Debian's Chromium (headless, at a
phone's width) driven by Selenium through Debian's chromedriver, against the real server process. Nothing is
downloaded: Selenium is given both binaries, so Selenium Manager never runs. `make test` installs them
(`make browser`); without them this module is skipped, saying so.

WENDA_PAGE_SCREENSHOT=docs/web-page.png makes the first test save its screenshot there (docs/web-page.png is
made so, with a CJK font installed: apt-get install fonts-wqy-microhei)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import build, serve_env, serving
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from wenda.index.config import Settings

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="no /usr/bin/chromium or /usr/bin/chromedriver: `make browser` installs them (apt chromium chromium-driver)",
)

EXAMPLE = "安阳2022年老旧小区改造项目的开工率是多少？"
FOLLOW_UP = "2021年的呢？"
ELSEWHERE = "火星上有多少座城市？"
NO_ANSWER = "语料中没有找到这个问题的答案。以下是最接近的段落，仅供参考："
PHONE = (412, 915)  # CSS pixels, a common Android phone
WAIT = 30  # seconds for anything the page does (a question takes well under one)

# Every request body the page sends, recorded in the page (the page's own script calls the global fetch).
RECORD_REQUESTS = """
window.sent = [];
const original = window.fetch;
window.fetch = (path, options) => {
  window.sent.push({path: String(path), body: options && options.body ? JSON.parse(options.body) : null});
  return original(path, options);
};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--lang=zh-CN",
    ):
        options.add_argument(flag)
    # a phone's screen (a desktop window is at least 500 pixels wide): the viewport meta tag applies, touch works
    width, height = PHONE
    options.add_experimental_option(
        "mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1}}
    )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, css: str, within: WebElement | WebDriver | None = None) -> WebElement:
    """The first visible element matching `css` (inside `within`), once there is one."""
    scope = within or driver

    def found(_: WebDriver) -> WebElement | bool:
        shown = [e for e in scope.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        return shown[0] if shown else False

    return WebDriverWait(driver, WAIT).until(found, f"nothing visible matches {css!r}")


def last_turn(driver: WebDriver, count: int) -> WebElement:
    """The conversation's newest turn once there are `count` and it is answered (or failed)."""
    WebDriverWait(driver, WAIT).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, "#conversation > .turn")) == count
            and not d.find_elements(By.CSS_SELECTOR, "#conversation > .turn .status")
        ),
        f"turn {count} was not answered",
    )
    turn = driver.find_elements(By.CSS_SELECTOR, "#conversation > .turn")[-1]
    assert not turn.find_elements(By.CSS_SELECTOR, ".error"), turn.text
    return turn


def click(driver: WebDriver, element: WebElement) -> None:
    """Click as a reader would: scrolled to the middle of the screen first, clear of the question box fixed at
    the bottom (the driver only scrolls what is off screen, not what the box covers)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def ask(driver: WebDriver, question: str) -> None:
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    driver.find_element(By.ID, "ask").click()


def test_page_answers_cites_and_records_feedback(browser: WebDriver, seed_settings: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(serve_env(seed_settings, data_dir)) as url:
        browser.get(url + "/")
        assert browser.title.startswith("问答")
        viewport = browser.find_element(By.CSS_SELECTOR, "meta[name=viewport]").get_attribute("content")
        assert "width=device-width" in viewport
        # the page, its script and style come from this server and nothing else
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(name.startswith(url + "/") for name in loaded), loaded
        assert browser.execute_script("return [innerWidth, document.documentElement.scrollWidth]") == [PHONE[0]] * 2
        browser.execute_script(RECORD_REQUESTS)

        # an example question, clicked: the answer in bold, its passage first with the answer marked in it
        example = next(e for e in browser.find_elements(By.CSS_SELECTOR, ".example") if e.text == EXAMPLE)
        click(browser, example)
        turn = last_turn(browser, 1)
        assert turn.find_element(By.CSS_SELECTOR, ".question").text.endswith(EXAMPLE)
        answer = turn.find_element(By.CSS_SELECTOR, ".answer strong").text
        assert "93.4%" in answer
        assert turn.find_element(By.CSS_SELECTOR, ".answer mark.span").text == "93.4%"
        sources = turn.find_elements(By.CSS_SELECTOR, ".sources > .source")
        assert len(sources) == 5
        marked = [s for s in sources if s.find_elements(By.CSS_SELECTOR, ".passage mark.answer-text")]
        assert marked, "no passage has the answer marked"
        highlight = marked[0].find_element(By.CSS_SELECTOR, ".passage mark.answer-text")
        assert highlight.text == answer
        assert highlight.find_element(By.CSS_SELECTOR, "strong.span").text == "93.4%"
        cite = marked[0].find_element(By.CSS_SELECTOR, ".cite")
        assert "《6.以人为核心的新型城镇化战略》" in cite.text
        assert "000_e771e9061456cf36.txt:" in cite.text
        assert not turn.find_elements(By.CSS_SELECTOR, ".badge, .notice, .resolved")

        # the citation opens the paragraph in its file: lines around it, the cited ones marked
        click(browser, cite)
        cited = wait_for(browser, ".context .lines li.cited", marked[0])
        assert "93.4%" in " ".join(e.text for e in marked[0].find_elements(By.CSS_SELECTOR, ".lines li.cited"))
        assert marked[0].find_elements(By.CSS_SELECTOR, ".lines li:not(.cited)"), "no context around the passage"
        assert cited.find_element(By.CSS_SELECTOR, ".line-number").text.isdigit()

        # 👍 lands in the feedback file, with the sources shown
        click(browser, turn.find_element(By.CSS_SELECTOR, ".vote[data-vote=up]"))
        WebDriverWait(browser, WAIT).until(lambda _: "谢谢反馈" in turn.find_element(By.CSS_SELECTOR, ".feedback").text)
        votes = [json.loads(line) for line in (data_dir / "feedback.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [vote["vote"] for vote in votes] == ["up"]
        assert any(source.startswith("000_e771e9061456cf36.txt:") for source in votes[0]["sources"])

        screenshot = Path(os.environ.get("WENDA_PAGE_SCREENSHOT") or tmp_path / "web-page.png")
        browser.execute_script("window.scrollTo(0, 0)")
        assert browser.save_screenshot(str(screenshot))
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # a follow-up carries the conversation: the earlier question goes as history, the page says how it
        # understood the new one
        ask(browser, FOLLOW_UP)
        turn = last_turn(browser, 2)
        assert turn.find_element(By.CSS_SELECTOR, ".resolved").text.startswith("按上文理解为：")
        assert "2021年" in turn.find_element(By.CSS_SELECTOR, ".answer").text
        asked = [r["body"] for r in browser.execute_script("return window.sent") if r["path"] == "v1/ask"]
        assert asked[-1] == {"question": FOLLOW_UP, "k": 5, "history": [EXAMPLE]}

        # 新对话 forgets it; a question the corpus cannot answer shows the notice and passages for reference only
        click(browser, browser.find_element(By.ID, "new-chat"))
        assert not browser.find_elements(By.CSS_SELECTOR, "#conversation > .turn")
        assert browser.find_element(By.ID, "examples").is_displayed()
        ask(browser, ELSEWHERE)
        turn = last_turn(browser, 1)
        assert turn.find_element(By.CSS_SELECTOR, ".notice").text == NO_ANSWER
        assert not turn.find_elements(By.CSS_SELECTOR, ".answer, mark")
        sources = turn.find_elements(By.CSS_SELECTOR, ".sources > .source")
        assert sources and all(s.find_element(By.CSS_SELECTOR, ".badge").text == "仅供参考" for s in sources)
        asked = [r["body"] for r in browser.execute_script("return window.sent") if r["path"] == "v1/ask"]
        assert asked[-1] == {"question": ELSEWHERE, "k": 5}


def test_page_asks_for_the_api_key_and_keeps_it(browser: WebDriver, seed_settings: Settings, tmp_path: Path) -> None:
    with serving(serve_env(seed_settings, tmp_path / "data", WENDA_API_KEYS="page-key")) as url:
        browser.get(url + "/")
        assert not browser.find_element(By.ID, "key-form").is_displayed()
        click(browser, browser.find_element(By.CSS_SELECTOR, ".example"))
        key = wait_for(browser, "#key-input")

        key.send_keys("wrong-key\n")  # the server refuses it: asked again, saying so
        assert "密钥无效" in wait_for(browser, "#key-error").text
        key.send_keys("page-key\n")
        turn = last_turn(browser, 1)
        assert "93.4%" in turn.find_element(By.CSS_SELECTOR, ".answer").text
        assert not browser.find_element(By.ID, "key-form").is_displayed()
        assert browser.execute_script("return localStorage.getItem('wenda.apiKey')") == "page-key"

        # kept in this browser: after a reload, questions go through without asking again
        browser.refresh()
        ask(browser, ELSEWHERE)
        last_turn(browser, 1)
        assert not browser.find_element(By.ID, "key-form").is_displayed()


HOSTILE = (
    '清河市规定<img src=x onerror="window.pwned=1">每户每月免费用水3吨，'
    '超出部分<script>window.pwned=2</script>按每吨4.5元收费，<b onmouseover="window.pwned=3">详见附件</b>。'
)


def test_markup_in_the_corpus_is_shown_as_text(browser: WebDriver, tmp_path: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "<i>水价<i>.txt").write_text(f"清河市水价通知\n\n{HOSTILE}\n", encoding="utf-8")
    build(corpus, tmp_path / "index", embedder)
    with serving(serve_env(Settings(corpus=corpus, index_dir=tmp_path / "index"), tmp_path / "data")) as url:
        browser.get(url + "/")
        ask(browser, "清河市每户每月免费用水多少吨？")
        turn = last_turn(browser, 1)
        passage = turn.find_element(By.CSS_SELECTOR, ".sources > .source .passage")
        assert "<img src=x onerror=" in passage.text and "<script>" in passage.text
        assert "<i>水价<i>.txt" in turn.find_element(By.CSS_SELECTOR, ".sources > .source .cite").text
        assert not turn.find_elements(By.CSS_SELECTOR, ".passage img, .passage script, .passage b, .cite i")
        assert browser.execute_script("return window.pwned === undefined")


ADMIN_KEY = "admin-key-0123456789"


def documents(box: WebElement) -> dict[str, str]:
    """source → status text of the rows of a knowledge base's document table on the management page."""
    rows = box.find_elements(By.CSS_SELECTOR, "table.documents tr[data-source]")
    return {row.get_attribute("data-source"): row.find_element(By.CSS_SELECTOR, ".state").text for row in rows}


def test_admin_page_uploads_builds_and_deletes(browser: WebDriver, tmp_path: Path, embedder) -> None:  # noqa: ANN001
    """The management page: two files uploaded at once (each with its progress bar), the build that follows
    watched to its end, a question only a new file answers, that file deleted and gone, in a real browser.
    WENDA_ADMIN_SCREENSHOT=docs/admin-page.png saves the page after the upload's build there."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "intro.txt").write_text("清河市简介\n\n清河市位于华北平原，下辖三个区。\n", encoding="utf-8")
    build(corpus, tmp_path / "index", embedder)
    library, parks = tmp_path / "图书馆.txt", tmp_path / "parks.md"
    library.write_text("星辰图书馆\n\n星辰市的图书馆共有藏书十二万册，每周一闭馆。\n", encoding="utf-8")
    parks.write_text("# 星辰公园\n\n星辰市有三座公园，最大的是银河公园。\n", encoding="utf-8")
    settings = Settings(corpus=corpus, index_dir=tmp_path / "index")
    with serving(serve_env(settings, tmp_path / "data", WENDA_ADMIN_KEY=ADMIN_KEY)) as url:
        browser.get(url + "/admin")
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(name.startswith(url + "/") for name in loaded), loaded
        wait_for(browser, "#key-input").send_keys(ADMIN_KEY)
        browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
        box = wait_for(browser, ".base[data-kb=default]")
        assert documents(box) == {"intro.txt": "indexed"}

        box.find_element(By.CSS_SELECTOR, "input.upload").send_keys(f"{library}\n{parks}")

        def built_with(wanted: set[str], outcome: str) -> bool:
            """The build that `outcome` describes is over and the page lists exactly `wanted`, indexed."""
            try:  # the page redraws the list when a build ends: an element may go stale while it is read
                shown = browser.find_elements(By.CSS_SELECTOR, ".base[data-kb=default]")
                state = shown[0].find_element(By.CSS_SELECTOR, ".build-state").text if shown else ""
                listed = documents(shown[0]) if shown else {}
            except StaleElementReferenceException:
                return False
            return state.startswith("构建完成") and outcome in state and listed == dict.fromkeys(wanted, "indexed")

        WebDriverWait(browser, 120).until(lambda _: built_with({"intro.txt", "图书馆.txt", "parks.md"}, "2 added"))
        box = browser.find_element(By.CSS_SELECTOR, ".base[data-kb=default]")
        assert "2 added" in box.find_element(By.CSS_SELECTOR, ".build-state").text
        assert float(box.find_element(By.CSS_SELECTOR, ".build-progress").get_attribute("value")) == 1
        if os.environ.get("WENDA_ADMIN_SCREENSHOT"):
            assert browser.save_screenshot(os.environ["WENDA_ADMIN_SCREENSHOT"])
        question = {"question": "星辰市的图书馆有多少藏书？", "k": 1}
        top = httpx.post(f"{url}/v1/ask", json=question).json()["results"][0]
        assert top["citation"]["source"] == "图书馆.txt" and "十二万册" in top["text"]

        row = next(r for r in box.find_elements(By.CSS_SELECTOR, "tr[data-source]") if r.text.startswith("图书馆.txt"))
        click(browser, row.find_element(By.CSS_SELECTOR, ".delete-file"))
        WebDriverWait(browser, WAIT).until(lambda d: d.switch_to.alert).accept()
        WebDriverWait(browser, 120).until(lambda _: built_with({"intro.txt", "parks.md"}, "1 removed"))
        after = httpx.post(f"{url}/v1/ask", json=question).json()
        assert all(r["citation"]["source"] != "图书馆.txt" for r in after["results"])
        assert not (corpus / "图书馆.txt").exists()
