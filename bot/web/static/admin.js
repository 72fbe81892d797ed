// The Wenda management page: knowledge bases, their documents and builds, through /admin/api.
// Names, titles and reasons come from files and users: every piece goes in as textContent, never as HTML.
// Every call sends the admin key (Authorization); every change also this server's CSRF token.
"use strict";

(() => {
  const API = "admin/api/";
  const KEY_STORE = "wenda.adminKey";
  const POLL_MS = 500;
  const $ = (id) => document.getElementById(id);
  let csrf = "";

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const key = () => sessionStorage.getItem(KEY_STORE) || "";

  function headers(change) {
    const sent = { Authorization: "Bearer " + key() };
    if (change) sent["X-CSRF-Token"] = csrf;
    return sent;
  }

  async function call(method, path, body) {
    const change = method !== "GET";
    const options = { method, headers: headers(change) };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, options);
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) {
      showKeyForm("密钥无效 (the admin key was refused)");
      throw new Error("unauthorized");
    }
    if (!response.ok) throw new Error((data.error && data.error.message) || "HTTP " + response.status);
    return data;
  }

  function showKeyForm(message) {
    $("admin").hidden = true;
    $("key-form").hidden = false;
    $("key-error").hidden = !message;
    $("key-error").textContent = message || "";
  }

  async function enter() {
    const session = await call("GET", "session");
    csrf = session.csrf;
    $("key-form").hidden = true;
    $("admin").hidden = false;
    await refresh();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("key-input").value.trim());
    enter().catch(() => {});
  });

  $("create-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("create-error");
    error.hidden = true;
    try {
      await call("POST", "kbs", { name: $("create-name").value.trim(), title: $("create-title").value.trim() });
      $("create-name").value = "";
      $("create-title").value = "";
      await refresh();
    } catch (problem) {
      error.textContent = problem.message;
      error.hidden = false;
    }
  });

  async function refresh() {
    const data = await call("GET", "kbs");
    const list = $("bases");
    list.replaceChildren(...data.kbs.map(renderBase));
    for (const base of data.kbs) {
      if (base.build.state === "running") watchBuild(base.name);
    }
  }

  function renderBase(base) {
    const box = el("section", "base");
    box.dataset.kb = base.name;
    box.append(el("h2", null, base.name + (base.title ? " · " + base.title : "")));
    const built = base.built ? "上次构建 " + base.built : "尚未构建";
    box.append(el("p", "meta", `${base.files} 个文件 · ${base.passages} 段 · ${built} · ${base.status}`));

    const table = el("table", "documents");
    const head = el("tr");
    ["文档", "状态", "段落", ""].forEach((title) => head.append(el("th", null, title)));
    table.append(head);
    for (const doc of base.documents) {
      const row = el("tr");
      row.dataset.source = doc.source;
      row.append(el("td", "source", doc.source));
      const state = el("td", "state", doc.status);
      if (doc.reason) state.append(el("div", "reason", doc.reason));
      row.append(state, el("td", null, String(doc.passages || 0)));
      const cell = el("td");
      const remove = el("button", "delete-file", "删除");
      remove.type = "button";
      remove.addEventListener("click", () => deleteFile(base.name, doc.source, box));
      cell.append(remove);
      row.append(cell);
      table.append(row);
    }
    box.append(table);

    const drop = el("div", "drop", "拖放文件到这里，或 ");
    const input = el("input", "upload");
    input.type = "file";
    input.multiple = true;
    drop.append(input);
    drop.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      upload(base.name, Array.from(event.dataTransfer.files), box);
    });
    input.addEventListener("change", () => upload(base.name, Array.from(input.files), box));
    box.append(drop, el("ul", "uploads"));

    const build = el("p", "build");
    const bar = el("progress", "build-progress");
    bar.max = 1;
    bar.value = base.build.state === "done" ? 1 : 0;
    const text = el("span", "build-state", describeBuild(base.build));
    build.append(bar, " ", text);
    box.append(build);

    const actions = el("p", "actions");
    const rebuild = el("button", "rebuild", "重建索引");
    rebuild.type = "button";
    rebuild.addEventListener("click", () => startBuild(base.name));
    actions.append(rebuild);
    if (base.managed) {
      const drop = el("button", "delete-kb", "删除知识库");
      drop.type = "button";
      drop.addEventListener("click", async () => {
        if (!confirm(`删除知识库 ${base.name} 及其全部文档？`)) return;
        await call("DELETE", "kbs/" + encodeURIComponent(base.name)).catch((problem) => alert(problem.message));
        await refresh();
      });
      actions.append(drop);
    }
    box.append(actions);
    return box;
  }

  function describeBuild(build) {
    if (build.state === "running") {
      return build.to_embed ? `构建中：已嵌入 ${build.embedded} / ${build.to_embed} 段` : "构建中：读取文档…";
    }
    if (build.state === "done") return "构建完成：" + build.message;
    if (build.state === "failed") return "构建失败：" + build.message;
    return "";
  }

  // One PUT per file, its bytes as the body, so each file has its own progress bar; then one build.
  async function upload(name, files, box) {
    if (!files.length) return;
    const list = box.querySelector(".uploads");
    const sent = files.map((file) => {
      const item = el("li", "upload-item");
      const bar = el("progress");
      bar.max = 1;
      bar.value = 0;
      const text = el("span", "upload-state", " " + file.name);
      item.append(bar, text);
      list.append(item);
      return new Promise((resolve) => {
        const request = new XMLHttpRequest();
        request.open("PUT", API + "kbs/" + encodeURIComponent(name) + "/files/" + encodeURIComponent(file.name));
        const sentHeaders = headers(true);
        Object.keys(sentHeaders).forEach((header) => request.setRequestHeader(header, sentHeaders[header]));
        request.upload.addEventListener("progress", (event) => {
          if (event.lengthComputable) bar.value = event.loaded / event.total;
        });
        request.addEventListener("load", () => {
          let data = {};
          try {
            data = JSON.parse(request.responseText);
          } catch {
            // not JSON: the status says enough
          }
          const ok = request.status === 200;
          bar.value = 1;
          text.textContent = ok
            ? ` ${file.name} → ${data.source}`
            : ` ${file.name}：${(data.error && data.error.message) || "HTTP " + request.status}`;
          item.classList.add(ok ? "uploaded" : "refused");
          resolve(ok);
        });
        request.addEventListener("error", () => {
          text.textContent = ` ${file.name}：上传失败 (upload failed)`;
          item.classList.add("refused");
          resolve(false);
        });
        request.send(file);
      });
    });
    const results = await Promise.all(sent);
    if (results.some(Boolean)) await startBuild(name);
  }

  async function deleteFile(name, source, box) {
    if (!confirm(`删除 ${source}？`)) return;
    try {
      await call("DELETE", "kbs/" + encodeURIComponent(name) + "/files/" + source.split("/").map(encodeURIComponent).join("/"));
      const row = Array.from(box.querySelectorAll("tr")).find((tr) => tr.dataset.source === source);
      if (row) row.remove();
      await startBuild(name);
    } catch (problem) {
      alert(problem.message);
    }
  }

  // A build asked for while one runs is run again after it by the server, so nothing uploaded is left out.
  async function startBuild(name) {
    try {
      await call("POST", "kbs/" + encodeURIComponent(name) + "/build");
    } catch (problem) {
      return alert(problem.message);
    }
    watchBuild(name);
  }

  const watching = new Set();

  async function watchBuild(name) {
    if (watching.has(name)) return;
    watching.add(name);
    try {
      for (;;) {
        const build = await call("GET", "kbs/" + encodeURIComponent(name) + "/build");
        const box = Array.from(document.querySelectorAll(".base")).find((node) => node.dataset.kb === name);
        if (box) {
          box.querySelector(".build-state").textContent = describeBuild(build);
          box.querySelector(".build-progress").value =
            build.state === "done" ? 1 : build.to_embed ? build.embedded / build.to_embed : 0;
        }
        if (build.state !== "running") break;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } finally {
      watching.delete(name);
    }
    await refresh();
  }

  if (key()) enter().catch(() => {});
})();
