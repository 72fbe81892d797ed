"""Plain-text rendering of responses for the terminal.

Corpus text, file names and questions are untrusted: a control character or escape sequence in them
(`\x1b[2J` clears the screen, `\x1b]0;…\x07` retitles the window, U+202E reverses the line) is shown as
a visible escape such as `\x1b`, never sent to the terminal as is.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from wenda.index.builder import BuildReport
from wenda.index.context import Context
from wenda.index.store import ChunkRecord
from wenda.retrieval.results import Response

# C0 controls but newline and tab, DEL, C1 controls, the line and paragraph separators (some JSON Lines readers
# split on them) and the bidirectional overrides and isolates
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
UNDERSTOOD = "按上文理解为："  # the line that shows how a follow-up was completed, so a wrong guess is visible
NO_ANSWER = "语料中没有找到这个问题的答案。以下是最接近的段落，仅供参考："  # chat front ends (Telegram, HTTP)
STALE = "⚠ 此文件在建立索引后已修改，引文可能已过时 (this file changed after indexing)"
FRAGMENT_CHARS = 12  # a text fragment's start and end: enough to be unique on a page, short enough to match
STALE_NOTE = "⚠ 此文件在建立索引后已修改 (this file changed after indexing): run `wenda index`"


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """`text` with every control character and bidi override made visible as an escape."""
    return UNSAFE.sub(_visible, text)


def json_line(data: dict | list) -> str:
    """One line of JSON that is also safe to print: JSON escapes C0 itself, this escapes C1 and bidi too."""
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(data, ensure_ascii=False))


def location(record: ChunkRecord) -> str:
    """Where in the file, in words a reader can follow: "第3页", "第2章", "表1第4行", "脚注2", "工作表«销售»第5行"
    (empty for a text file's line, which `source:line` already says)."""
    where = record.where
    if "sheet" in where:  # a spreadsheet's page is its sheet, named instead of numbered
        return f"工作表«{where['sheet']}»第{where['row']}行"
    words = [f"第{where['page']}页"] if "page" in where else [f"第{where['chapter']}章"] if "chapter" in where else []
    if "table" in where:
        words.append(f"表{where['table']}第{where['row']}行")
    if "footnote" in where:
        words.append(f"脚注{where['footnote']}")
    if "text_box" in where:
        words.append(f"文本框{where['text_box']}")
    if where.get("notes"):
        words.append("备注")
    if "box" in where:  # read by OCR: the recognised region, in the page's points (an image's pixels)
        words.append("·区域[" + ",".join(str(int(v)) for v in where["box"]) + "]")
    return "".join(words)


def citation_parts(record: ChunkRecord) -> list[str]:
    """《title》, section, where in the file, and `source:locator` as `wenda show` takes it."""
    parts = [f"《{record.title}》"] + ([record.section] if record.section else [])
    return parts + ([location(record)] if location(record) else []) + [f"{record.source}:{record.locator}"]


def highlight_link(url: str, passage: str) -> str:
    """`url#:~:text=start,end`: the passage's first and last words, so the browser scrolls to and highlights it."""
    words = passage.strip()
    if len(words) <= 2 * FRAGMENT_CHARS:
        fragment = quote(words, safe="")
    else:
        fragment = f"{quote(words[:FRAGMENT_CHARS], safe='')},{quote(words[-FRAGMENT_CHARS:], safe='')}"
    return f"{url.split('#', 1)[0]}#:~:text={fragment}"


def citation_line(record: ChunkRecord, stale: bool = False) -> str:
    """《title》 · section · 第3页 · file:p3:12 — enough to find the passage by hand or with `wenda show`
    (flagged when the file changed)."""
    line = " · ".join(citation_parts(record))
    return f"{line}\n    {STALE_NOTE}" if stale else line


def render_context(context: Context) -> str:
    """A passage in context: a heading line, then numbered lines with the passage's marked ▶."""
    unit = {"page": f" · 第{context.unit}页", "chapter": f" · 第{context.unit}章"}.get(context.unit_name or "", "")
    lines = [f"《{context.title}》 · {context.source}{unit}"]
    if context.changed:
        lines.append(STALE_NOTE)
    width = len(str(context.lines[-1][0])) if context.lines else 1
    lines += [f"{'▶' if marked else ' '} {number:>{width}}  {text}" for number, text, marked in context.lines]
    return terminal_safe("\n".join(lines))


def render_response(response: Response) -> str:
    """Ranked passages, each with its score and citation, or the error; safe to print to a terminal."""
    if response.error:
        return terminal_safe(f"! {response.error}")
    if not response.results:
        return "No passages found: the index is empty."
    sure = f"置信度 {response.confidence:.0%}"
    stale = {result.record.source for result in response.results if result.stale}
    if response.answer is not None:
        record = response.answer.record
        head = f"答案: {response.answer.text}\n      {citation_line(record, record.source in stale)} · {sure}"
    else:
        head = f"语料中没有找到这个问题的答案（not found in the corpus; {sure}）。最接近的段落:"
    blocks = [
        f"[{result.rank}] {result.score:.3f}  {citation_line(result.record, result.stale)}\n    {result.record.text}"
        for result in response.results
    ]
    understood = [f"{UNDERSTOOD}{response.resolved}"] if response.resolved else []
    return terminal_safe("\n".join(understood) + "\n" * bool(understood) + "\n\n".join([head, *blocks]))


def render_account(entries: list[dict]) -> str:
    """`wenda sources`: one line per corpus file (status, passages, pages, how it was read), the reason under
    each skipped one, and the counts."""
    lines = []
    for entry in entries:
        pages = f"{entry['pages']} p" if entry["pages"] else ""
        how = {"ocr": "OCR", "both": "text+OCR", "text": "text"}.get(entry["read"] or "", "")
        lines.append(f"{entry['status']:<8} {entry['passages']:>6} {pages:>6} {how:<8} {entry['source']}")
        if entry["reason"]:
            lines.append(f"{'':>30}{entry['reason']}")
        lines += [f"{'':>30}note: {note}" for note in entry.get("notes", [])]
    total: dict[str, int] = {}
    for entry in entries:
        total[entry["status"]] = total.get(entry["status"], 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in total.items())
    header = f"{'status':<8} {'passages':>6} {'pages':>6} {'read':<8} file"
    return "\n".join([header, *lines, f"{len(entries)} files: {summary or 'none'}"])


def render_report(report: BuildReport) -> str:
    """A line summing up a build, after one line per repair."""
    repairs = "".join(f"repaired: {line}\n" for line in report.repaired)
    skipped = ""
    if report.skipped:
        names = ", ".join(source for source, _ in report.skipped[:10])
        more = f" and {len(report.skipped) - 10} more" if len(report.skipped) > 10 else ""
        s = "s" * (len(report.skipped) != 1)
        skipped = f"\n{len(report.skipped)} file{s} skipped: {names}{more} (reasons above; `wenda sources` lists them)"
        if report.log is not None:
            failed = len(report.details)
            skipped += f"\nwhat the reader{'s' * (failed != 1)} raised: {report.log}"
    return terminal_safe(repairs + _summary(report) + skipped)


def _summary(report: BuildReport) -> str:
    if report.up_to_date and report.generation is None:
        return f"index is up to date: {len(report.unchanged)} files, {report.total_chunks} chunks; nothing embedded"
    counts = ", ".join(
        f"{len(items)} {label}"
        for label, items in (("added", report.added), ("changed", report.changed), ("removed", report.removed))
        if items
    )
    where = f" on {report.embedded_on}" if report.embedded_on else ""
    rate = ""
    if report.embedded_chunks and report.embed_seconds > 0:
        engine = report.embedded_on or report.engine
        rate = f"; {report.embedded_chunks / report.embed_seconds:.1f} chunks/s embedding with {engine}"
    return (
        f"indexed {counts} ({report.embedded_chunks} chunks embedded{where}, {report.total_chunks} in all) "
        f"in {report.seconds:.1f} s -> {report.generation}{rate}"
    )
