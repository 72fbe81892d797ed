"""index.segmenter: jieba-rs cut into python jieba's words, compared with python jieba itself (the reference)
on the bundled articles, questions, news paragraphs and strings built to hit every boundary rule."""

import gzip
import itertools
import json
import random
from pathlib import Path

import jieba
import pytest
from wenda.index.segmenter import cut, cut_for_search
from wenda.index.tokenization import normalize

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# Where jieba-rs on its own draws other lines than python jieba: runs joined by "-" or ".", extension-A and
# later characters, letters next to "+" and "#", words its HMM joins, whitespace and line ends.
EDGES = [
    "1-7月,全市新登记市场主体3279户",
    "俄军s-300防空导弹系统",
    "网站(http://20th.cpcnews.cn)",
    "PM2.5浓度下降3.49%,优良天数增加55%",
    "白䲟可当哪些鱼类?",
    "“哈卡尼网络”武装组织常在哪活动",
    "学c++和c#语言,a-#c.a改",
    "第一行\r\n第二行\t制表 空格\u3000全角",
    "𠀀😀·、，。!?@ 安阳......",
    "",
]


def texts() -> list[str]:
    found = list(EDGES)
    for path in sorted((SHARED / "corpus").glob("*.txt")):
        found += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    found += [json.loads(line)["q"] for line in (SHARED / "eval" / "dev.jsonl").read_text("utf-8").splitlines()]
    with gzip.open(SHARED / "data" / "xwlb.corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        found += [json.loads(line)["text"] for line in itertools.islice(handle, 1500)]
    shuffle = random.Random(7)
    alphabet = "安阳市区改革常在哪1-7.5%PM2.5s-300 \t\r\n䲟𠀀😀·、，。!?@#&+_abcXYZ--......"
    found += ["".join(shuffle.choice(alphabet) for _ in range(shuffle.randint(1, 40))) for _ in range(1500)]
    return found


@pytest.mark.parametrize("normalized", [False, True], ids=["as written", "normalized"])
def test_words_are_python_jiebas(normalized: bool) -> None:
    differing = []
    for text in texts():
        text = normalize(text) if normalized else text
        if cut(text) != jieba.lcut(text) or cut_for_search(text) != jieba.lcut_for_search(text):
            differing.append(text)
    assert not differing, differing[:5]
