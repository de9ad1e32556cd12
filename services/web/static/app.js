// Lectern's only script: progressive enhancement. Every form and link works without it.
"use strict";
(function () {
  const csrf = () => (document.querySelector("main") || {}).dataset?.csrf || "";

  // Confirmation before destructive actions.
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  }, true);

  // ---- Documents: drag and drop, upload without leaving the page, live status ----
  const upload = document.getElementById("upload");
  if (upload) {
    const input = upload.querySelector('input[type="file"]');
    const status = document.getElementById("upload-status");
    ["dragenter", "dragover"].forEach((t) => upload.addEventListener(t, (e) => { e.preventDefault(); upload.classList.add("over"); }));
    ["dragleave", "drop"].forEach((t) => upload.addEventListener(t, () => upload.classList.remove("over")));
    upload.addEventListener("drop", (e) => {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; send(); }
    });
    upload.addEventListener("submit", (e) => { e.preventDefault(); send(); });
    async function send() {
      if (!input.files.length) { status.textContent = "Choose one or more files first."; return; }
      const data = new FormData();
      data.append("csrf", csrf());
      for (const f of input.files) data.append("files", f, f.name);
      status.textContent = `Uploading ${input.files.length} file(s)…`;
      upload.querySelector("button").disabled = true;
      try {
        const res = await fetch(upload.action, { method: "POST", body: data, headers: { Accept: "application/json" } });
        const body = await res.json().catch(() => ({}));
        if (!res.ok) { status.textContent = body.message || `Upload failed (${res.status}).`; return; }
        window.location.reload();
      } catch (err) {
        status.textContent = "The upload did not reach Lectern. Check your connection and try again.";
      } finally {
        upload.querySelector("button").disabled = false;
      }
    }
  }

  const table = document.getElementById("documents");
  if (table) {
    const pending = () => [...table.querySelectorAll("tr[data-status]")].some((r) => r.dataset.status === "queued" || r.dataset.status === "processing");
    async function poll() {
      if (!pending()) return;
      try {
        const res = await fetch(table.dataset.statusUrl, { headers: { Accept: "application/json" } });
        if (res.ok) {
          const { documents } = await res.json();
          for (const d of documents) {
            const row = document.getElementById(`doc-${d.id}`);
            if (!row) { window.location.reload(); return; }
            if (row.dataset.status === d.status) continue;
            row.dataset.status = d.status;
            const cell = row.querySelector(".status");
            cell.textContent = "";
            const badge = document.createElement("span");
            badge.className = `badge ${d.status}`;
            badge.textContent = d.status;
            cell.appendChild(badge);
            if (d.error) {
              cell.appendChild(document.createElement("br"));
              const err = document.createElement("span");
              err.className = "error";
              err.textContent = d.error;
              cell.appendChild(err);
            }
            row.querySelector(".pages").textContent = d.pages ?? "";
            row.querySelector(".chunks").textContent = d.chunks;
          }
        }
      } catch (_) { /* try again on the next tick */ }
      window.setTimeout(poll, 1500);
    }
    window.setTimeout(poll, 1000);
  }

  // ---- Sources: while a sync runs or is due, its state live; the page again when it ends ----
  const sourceList = document.getElementById("source-list");
  if (sourceList && sourceList.querySelector("tr[data-busy]")) {
    const sameTime = (a, b) => a === b || (a !== "" && b !== "" && Date.parse(a) === Date.parse(b));
    async function pollSources() {
      try {
        const res = await fetch(sourceList.dataset.statusUrl, { headers: { Accept: "application/json" } });
        if (res.ok) {
          const { sources } = await res.json();
          const rows = sourceList.querySelectorAll("tbody tr");
          // A sync ended (or a source came or went): its result and documents are on the page.
          if (sources.length !== rows.length) { window.location.reload(); return; }
          for (const s of sources) {
            const row = document.getElementById(`source-${s.id}`);
            if (!row || !sameTime(row.dataset.lastSync, s.last_sync_at || "")) { window.location.reload(); return; }
            if (row.dataset.state === s.state) continue;
            row.dataset.state = s.state;
            const badge = row.querySelector(".state .badge");
            badge.className = `badge ${s.state}`;
            badge.textContent = s.state;
          }
        }
      } catch (_) { /* try again on the next tick */ }
      window.setTimeout(pollSources, 2000);
    }
    window.setTimeout(pollSources, 1500);
  }

  // ---- Chat: streamed answers ----
  const ask = document.getElementById("ask");
  const messages = document.getElementById("messages");
  if (ask && messages && window.ReadableStream) {
    const status = document.getElementById("ask-status");
    ask.addEventListener("submit", async (e) => {
      e.preventDefault();
      const question = ask.querySelector("textarea").value.trim();
      if (!question) return;
      const body = new URLSearchParams(new FormData(ask));
      const button = ask.querySelector("button[type=submit]");
      button.disabled = true;
      status.textContent = "Searching your documents…";
      const article = document.createElement("article");
      article.className = "exchange streaming";
      const q = document.createElement("p");
      q.className = "question";
      q.textContent = question;
      const a = document.createElement("div");
      a.className = "answer";
      const text = document.createElement("p");
      text.className = "text";
      text.setAttribute("aria-live", "polite");
      a.appendChild(text);
      article.append(q, a);
      messages.appendChild(article);
      article.scrollIntoView({ block: "nearest" });
      try {
        const res = await fetch(ask.action, { method: "POST", body, headers: { Accept: "text/event-stream" } });
        if (!res.ok || !res.body) {
          const err = await res.json().catch(() => ({}));
          throw new Error(res.status === 403 ? "This page has expired; reload it and ask again." : (err.message || `Lectern answered ${res.status}.`));
        }
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        let done = false;
        while (!done) {
          const chunk = await reader.read();
          if (chunk.done) break;
          buffer += decoder.decode(chunk.value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const raw = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = "message", data = "";
            for (const line of raw.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            const payload = data ? JSON.parse(data) : {};
            if (event === "sources") {
              // The passages the answer will come from, shown while the model reads them.
              status.textContent = "Reading the sources…";
              const list = document.createElement("ol");
              list.className = "sources-preview";
              list.setAttribute("aria-label", "Sources being read");
              for (const p of payload.passages || []) {
                const item = document.createElement("li");
                const title = document.createElement("strong");
                title.textContent = `${p.title}, page ${p.page}`;
                const snippet = document.createElement("span");
                snippet.textContent = ` ${(p.text || "").slice(0, 140)}…`;
                item.append(title, snippet);
                list.appendChild(item);
              }
              a.appendChild(list);
            }
            else if (event === "token") { status.textContent = "Answering…"; text.textContent += payload.text; }
            else if (event === "html") {
              const holder = document.createElement("div");
              holder.innerHTML = payload.html;
              article.replaceWith(...holder.childNodes);
              if (!ask.querySelector('input[name="conversation_id"]')) {
                const hidden = document.createElement("input");
                hidden.type = "hidden"; hidden.name = "conversation_id"; hidden.value = payload.conversation_id;
                ask.appendChild(hidden);
                ask.querySelector("fieldset.workspaces")?.setAttribute("disabled", "");
                history.replaceState(null, "", `/chat/${payload.conversation_id}`);
              }
            } else if (event === "error") { throw new Error(payload.message || "The answer failed."); }
            else if (event === "done") { done = true; }
          }
        }
        ask.querySelector("textarea").value = "";
        status.textContent = "";
      } catch (err) {
        status.textContent = err.message;
        article.remove();
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- Citations open in a side panel ----
  const panel = document.getElementById("panel");
  const layout = document.querySelector(".chat-layout");
  function closePanel() {
    if (!panel) return;
    panel.hidden = true;
    panel.textContent = "";
    layout?.classList.remove("with-panel");
  }
  document.addEventListener("click", async (e) => {
    const link = e.target.closest && e.target.closest("a.cite");
    if (link && panel) {
      e.preventDefault();
      const url = new URL(link.href, window.location.href);
      url.searchParams.set("fragment", "1");
      panel.hidden = false;
      layout?.classList.add("with-panel");
      panel.innerHTML = '<p class="muted">Opening the passage…</p>';
      const res = await fetch(url, { headers: { Accept: "text/html" } });
      panel.innerHTML = res.ok ? await res.text() : '<p class="error">This citation could not be opened.</p>';
      panel.focus();
      return;
    }
    if (e.target.closest && e.target.closest(".panel .close")) closePanel();
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closePanel(); });

  // ---- Feedback without a page load ----
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.classList.contains("feedback") || e.defaultPrevented) return;
    e.preventDefault();
    const data = new URLSearchParams(new FormData(form));
    if (e.submitter && e.submitter.name) data.set(e.submitter.name, e.submitter.value);
    const res = await fetch(form.action, { method: "POST", body: data, headers: { Accept: "application/json" } });
    const saved = form.querySelector(".saved");
    if (res.ok) {
      form.querySelectorAll("button[name=helpful]").forEach((b) => {
        const on = b === e.submitter;
        b.classList.toggle("chosen", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
      saved.textContent = "Thanks, your feedback is saved.";
    } else {
      saved.textContent = "Your feedback could not be saved; reload the page and try again.";
    }
  });
})();
