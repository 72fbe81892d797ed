// The Wenda web chat page: asks POST v1/ask, opens passages from v1/passages, sends 👍/👎 to v1/feedback.
// Corpus text and questions are untrusted: every piece goes into the page as textContent, never as HTML.
"use strict";

(() => {
  const K = 5; // passages shown per answer
  const MAX_HISTORY = 20; // earlier questions sent with a follow-up, as the server reads at most
  const KEY_STORE = "wenda.apiKey";
  const NO_ANSWER = "语料中没有找到这个问题的答案。以下是最接近的段落，仅供参考：";
  const UNDERSTOOD = "按上文理解为：";
  const STALE = "⚠ 此文件在建立索引后已修改，引文可能已过时";

  const $ = (id) => document.getElementById(id);
  const conversation = $("conversation");
  const questionBox = $("question");
  const askButton = $("ask");

  let history = []; // the questions asked so far in this conversation, oldest first, as typed
  let generation = 0; // bumped by 新对话, so an answer still on its way to a cleared conversation is dropped
  let busy = false;
  let memoryKey = null; // the API key when the browser refuses localStorage
  let waitingForKey = []; // requests that got a 401, resumed once a key is entered

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- the API key: asked for only when the server answers 401, kept in this browser only ---

  function storedKey() {
    try {
      return localStorage.getItem(KEY_STORE) || memoryKey;
    } catch {
      return memoryKey;
    }
  }

  function storeKey(key) {
    memoryKey = key;
    try {
      localStorage.setItem(KEY_STORE, key);
    } catch {
      // private browsing may refuse storage: the key then lasts until the page is closed
    }
  }

  function askForKey(rejected) {
    const form = $("key-form");
    const error = $("key-error");
    error.hidden = !rejected;
    error.textContent = rejected ? "密钥无效，请重新输入。" : "";
    form.hidden = false;
    $("key-input").focus();
    return new Promise((resolve) => waitingForKey.push(resolve));
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    storeKey(key);
    $("key-input").value = "";
    $("key-form").hidden = true;
    const resume = waitingForKey;
    waitingForKey = [];
    resume.forEach((go) => go());
  });

  // --- talking to the server ---

  function failure(status, data) {
    if (status === 429) return "请求太频繁，请稍后再试。";
    if (status === 503) return "索引暂时不可用，请稍后再试。";
    const message = data && data.error && data.error.message;
    if (status === 422 && message) return "无法处理这个问题：" + message;
    return `服务器出错（HTTP ${status}），请稍后再试。`;
  }

  async function api(path, body) {
    for (;;) {
      const headers = {};
      const key = storedKey();
      if (key) headers.Authorization = "Bearer " + key;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let response;
      try {
        response = await fetch(path, {
          method: body === undefined ? "GET" : "POST",
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch {
        throw new Error("无法连接服务器，请检查网络后再试。");
      }
      let data = null;
      try {
        data = await response.json();
      } catch {
        // not JSON: reported by its status below
      }
      if (response.status === 401) {
        await askForKey(Boolean(key));
        continue; // the same request again, with the key just entered
      }
      if (!response.ok) throw new Error(failure(response.status, data));
      return data;
    }
  }

  // --- citations and passages ---

  function place(c) {
    // where in the file in words, as the terminal and Telegram show it: 第3页, 第2章, 表1第4行, 脚注2
    let words = c.page ? `第${c.page}页` : c.chapter ? `第${c.chapter}章` : "";
    if (c.table) words += `表${c.table}第${c.row}行`;
    if (c.footnote) words += `脚注${c.footnote}`;
    return words;
  }

  function citationText(c) {
    const parts = [`《${c.title}》`];
    if (c.section) parts.push(c.section);
    if (place(c)) parts.push(place(c));
    parts.push(`${c.source}:${c.locator}`);
    return parts.join(" · ");
  }

  // The server counts offsets in Unicode code points (Python strings); JavaScript strings count UTF-16
  // units, so text is cut as arrays of code points.
  const points = (text) => Array.from(text);

  // [from, to) of the answer inside a passage, in the passage's code points, or null. Both offsets are in
  // the cited paragraph: the passage holds the answer when it is from the same paragraph and overlaps it,
  // and the characters there must be the answer's own (else nothing is marked rather than the wrong words).
  function answerRange(result, answer, length) {
    const r = result.citation;
    const a = answer.citation;
    if (r.source !== a.source || r.paragraph !== a.paragraph) return null;
    const from = Math.max(a.start, r.start);
    const to = Math.min(a.end, r.end);
    if (from >= to || to - r.start > length) return null;
    const expected = points(answer.text).slice(from - a.start, to - a.start).join("");
    const found = points(result.text).slice(from - r.start, to - r.start).join("");
    return expected === found ? [from - r.start, to - r.start] : null;
  }

  // The span the question asks for (a number, a date…) in `chars`, a text starting at paragraph offset
  // `offset`, when it lies within [from, to) and reads the same there; else null.
  function spanRange(answer, offset, from, to, chars) {
    const span = answer.span;
    if (!span) return null;
    const start = span.start - offset;
    const end = span.end - offset;
    if (start < from || end > to || start >= end) return null;
    return chars.slice(start, end).join("") === span.text ? [start, end] : null;
  }

  // `chars` as text, [from, to) wrapped in a <mark> of `className`, and `inner` (if any) in <strong> within it.
  function marked(chars, [from, to], className, inner) {
    const text = (a, b) => chars.slice(a, b).join("");
    const mark = el("mark", className);
    if (inner) mark.append(text(from, inner[0]), el("strong", "span", text(...inner)), text(inner[1], to));
    else mark.textContent = text(from, to);
    const nodes = document.createDocumentFragment();
    nodes.append(text(0, from), mark, text(to));
    return nodes;
  }

  function passage(result, answer) {
    const quote = el("blockquote", "passage");
    const chars = points(result.text);
    const range = answer && answerRange(result, answer, chars.length);
    if (!range) {
      quote.textContent = result.text;
      return quote;
    }
    quote.append(marked(chars, range, "answer-text", spanRange(answer, result.citation.start, ...range, chars)));
    return quote;
  }

  function sourcePath(c) {
    const params = new URLSearchParams({ line: String(c.line), around: "3" });
    if (c.page) params.set("page", String(c.page));
    else if (c.chapter) params.set("chapter", String(c.chapter));
    return "v1/passages/" + c.source.split("/").map(encodeURIComponent).join("/") + "?" + params;
  }

  async function openContext(button, box, c) {
    const open = box.hidden;
    box.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (!open || box.dataset.state) return; // loaded already, or on its way
    box.dataset.state = "loading";
    box.replaceChildren(el("p", "status", "正在打开原文…"));
    try {
      const data = await api(sourcePath(c));
      const unit = data.page ? ` · 第${data.page}页` : data.chapter ? ` · 第${data.chapter}章` : "";
      const heading = el("p", "context-title", `《${data.title}》 · ${data.source}${unit}`);
      const lines = el("ol", "lines");
      for (const line of data.lines) {
        const row = el("li", line.cited ? "cited" : "");
        row.append(el("span", "line-number", String(line.line)), el("span", "line-text", line.text));
        lines.append(row);
      }
      box.replaceChildren(heading, ...(data.changed ? [el("p", "stale", STALE)] : []), lines);
      box.dataset.state = "loaded";
    } catch (error) {
      delete box.dataset.state; // opened again, it tries again
      box.replaceChildren(el("p", "error", error.message));
    }
  }

  function source(result, number, answer, reference) {
    const c = result.citation;
    const item = el("li", "source");
    const button = el("button", "cite");
    button.type = "button";
    button.title = "点击查看原文上下文";
    button.setAttribute("aria-expanded", "false");
    button.append(el("span", "number", `[${number}]`), " " + citationText(c));
    item.append(button);
    if (reference) item.append(el("span", "badge", "仅供参考"));
    if (/^https?:\/\//.test(c.url || "")) {
      const link = el("a", "original", "原文");
      link.href = c.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      item.append(" ", link);
    }
    if (c.stale) item.append(el("p", "stale", STALE));
    item.append(passage(result, answer));
    const box = el("div", "context");
    box.hidden = true;
    item.append(box);
    button.addEventListener("click", () => openContext(button, box, c));
    return item;
  }

  // --- answers ---

  function feedback(question, results) {
    const bar = el("div", "feedback");
    const note = el("span", "hint", "这个回答有帮助吗？");
    const votes = [
      ["up", "👍", "有帮助"],
      ["down", "👎", "没有帮助"],
    ].map(([vote, face, label]) => {
      const button = el("button", "vote", face);
      button.type = "button";
      button.dataset.vote = vote;
      button.setAttribute("aria-label", label);
      button.addEventListener("click", async () => {
        votes.forEach((b) => (b.disabled = true));
        try {
          const sources = results.map((r) => `${r.citation.source}:${r.citation.locator}`);
          await api("v1/feedback", { question, sources, vote });
          button.classList.add("chosen");
          note.textContent = "谢谢反馈！";
        } catch (error) {
          votes.forEach((b) => (b.disabled = false));
          note.textContent = error.message;
        }
      });
      return button;
    });
    bar.append(note, ...votes);
    return bar;
  }

  function answerTitle(answer) {
    const line = el("p", "answer");
    const bold = el("strong");
    const chars = points(answer.text);
    const span = spanRange(answer, answer.citation.start, 0, chars.length, chars);
    if (span) bold.append(marked(chars, span, "span"));
    else bold.textContent = answer.text;
    line.append(bold);
    return line;
  }

  function showAnswer(turn, question, data) {
    if (data.resolved) turn.append(el("p", "resolved", UNDERSTOOD + data.resolved));
    const answer = data.answerable && data.answer ? data.answer : null;
    turn.classList.add(answer ? "answered" : "unanswered");
    turn.append(answer ? answerTitle(answer) : el("p", "notice", NO_ANSWER));
    turn.append(el("p", "confidence", `置信度 ${Math.round(data.confidence * 100)}%`));
    if (!data.results.length) {
      turn.append(el("p", "notice", "索引中还没有段落。"));
      return;
    }
    const list = el("ol", "sources");
    data.results.forEach((result, i) => list.append(source(result, i + 1, answer, !answer)));
    turn.append(list, feedback(question, data.results));
  }

  async function ask(text) {
    const question = text.trim();
    if (!question || busy) return;
    busy = true;
    askButton.disabled = true;
    $("examples").hidden = true;
    const asked = generation;
    const turn = el("li", "turn");
    const status = el("p", "status", "正在查找…");
    turn.append(el("p", "question", question), status);
    conversation.append(turn);
    turn.scrollIntoView({ block: "nearest" });
    const body = { question, k: K };
    if (history.length) body.history = history.slice(-MAX_HISTORY);
    try {
      const data = await api("v1/ask", body);
      if (asked !== generation) return;
      status.remove();
      showAnswer(turn, question, data);
      history.push(question);
    } catch (error) {
      status.className = "error";
      status.textContent = error.message;
    } finally {
      busy = false;
      askButton.disabled = false;
    }
    turn.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = questionBox.value;
    if (busy || !text.trim()) return;
    questionBox.value = "";
    ask(text);
  });

  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => ask(button.textContent));
  }

  $("new-chat").addEventListener("click", () => {
    generation += 1;
    history = [];
    conversation.replaceChildren();
    $("examples").hidden = false;
    questionBox.value = "";
    questionBox.focus();
  });
})();
