"""Non-content lines: bylines, editor credits, sources, photo captions and page furniture.

They stay in the index and citable, but a ranking feature and the answer picker keep them from being
"the answer" to a question that only mentions the same city or newspaper.
"""

from __future__ import annotations

import re

# A short line made of credits: "来源:襄阳日报 / 编辑:邓植元", "责任编辑:…", "□本报记者 牛思明", "(图片由…提供)".
CREDIT = re.compile(
    r"(来源|编辑|责任编辑|责编|审核|审校|校对|终审|初审|复审|监制|出品|统筹|策划|记者|通讯员|作者|撰文|摄影|摄|图|图片|"
    r"视频|制图|设计|排版|美编|供稿|投稿|转载|原标题|本文|版权)\s*[:：/|丨]"
    r"|^[□■◇◆]?\s*(本报记者|记者|通讯员|本报讯|新华社)"
    r"|^[（(]?(图片|图|照片)(由|为|：|:)"
    r"|^(第\s*\d+\s*版|\d+\s*版|上一篇|下一篇|返回|点击|扫码|关注|分享|打印|字号)"
)
# Past this length, or with a sentence's punctuation, a line is body text even if it mentions an editor
# ("记者从市政府获悉，…。").
MAX_FURNITURE_CHARS = 60
SENTENCE = re.compile(r"[。，！？；,!?;]")


def is_furniture(text: str) -> bool:
    """True for a credit, byline, caption or page-furniture line."""
    line = text.strip()
    return len(line) <= MAX_FURNITURE_CHARS and not SENTENCE.search(line) and bool(CREDIT.search(line))
