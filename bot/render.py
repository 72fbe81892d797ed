"""Plain-text rendering of responses for the terminal."""

from __future__ import annotations

from index.builder import BuildReport
from index.store import ChunkRecord
from retrieval.results import Response


def citation_line(record: ChunkRecord) -> str:
    """《title》 · section · file:line — enough to find the passage by hand."""
    parts = [f"《{record.title}》"]
    if record.section:
        parts.append(record.section)
    parts.append(f"{record.source}:{record.line}")
    return " · ".join(parts)


def render_response(response: Response) -> str:
    """Ranked passages, each with its score and citation, or the error."""
    if response.error:
        return f"! {response.error}"
    if not response.results:
        return "No passages found: the index is empty."
    sure = f"置信度 {response.confidence:.0%}"
    if response.answer is not None:
        head = f"答案: {response.answer.text}\n      {citation_line(response.answer.record)} · {sure}"
    else:
        head = f"语料中没有找到这个问题的答案（not found in the corpus; {sure}）。最接近的段落:"
    blocks = [
        f"[{result.rank}] {result.score:.3f}  {citation_line(result.record)}\n    {result.record.text}"
        for result in response.results
    ]
    return "\n\n".join([head, *blocks])


def render_report(report: BuildReport) -> str:
    """One line summing up a build."""
    if report.up_to_date and report.generation is None:
        return f"index is up to date: {len(report.unchanged)} files, {report.total_chunks} chunks; nothing embedded"
    counts = ", ".join(
        f"{len(items)} {label}"
        for label, items in (("added", report.added), ("changed", report.changed), ("removed", report.removed))
        if items
    )
    return (
        f"indexed {counts} ({report.embedded_chunks} chunks embedded, {report.total_chunks} in all) "
        f"in {report.seconds:.1f} s -> {report.generation}"
    )
