// carebot staff console: live transcript (polling), AJAX replies, snippets, live queue.
"use strict";

const csrf = () => (document.querySelector('meta[name="csrf"]') || {}).content || "";
const POLL_MS = 700;

function post(url, form) {
  return fetch(url, { method: "POST", body: new FormData(form), headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" });
}

function lineElement(line) {
  const item = document.createElement("li");
  item.className = line.speaker;
  item.dataset.index = line.index;
  const who = { customer: "客户", bot: "机器人", agent: line.who || "客服", system: "" }[line.speaker];
  if (line.speaker === "system") {
    item.textContent = line.text === "paused" ? "— 机器人已暂停，人工接待中 —" : "— 机器人已恢复 —";
    return item;
  }
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = who + (line.at ? " · " + new Date(line.at).toLocaleTimeString("zh-CN") : "");
  item.appendChild(meta);
  item.appendChild(document.createTextNode(line.text));
  return item;
}

function watchTranscript(root) {
  const list = document.getElementById("transcript");
  let after = -1;
  async function poll() {
    try {
      const response = await fetch(`/api/handoffs/${root.dataset.handoff}/transcript?after=${after}`, { credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
        for (const line of data.lines) {
          list.appendChild(lineElement(line));
          after = Math.max(after, line.index);
        }
        if (data.lines.length && atBottom) list.scrollTop = list.scrollHeight;
        if (data.state !== root.dataset.state) root.dataset.state = data.state;
      }
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  poll();
}

function wireReply() {
  const form = document.getElementById("reply");
  if (!form) return;
  const text = document.getElementById("reply-text");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    const response = await post(form.action, form);
    if (response.ok) { text.value = ""; text.focus(); }
    else { alert((await response.json()).error || "发送失败"); }
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  for (const button of document.querySelectorAll(".snippet")) {
    button.addEventListener("click", () => { text.value = button.dataset.text; text.focus(); });
  }
}

function wireReveal() {
  // A supervisor reveals one masked field; the answer is set as text, never parsed as HTML.
  for (const form of document.querySelectorAll("form.reveal")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await post(form.action, form);
      const data = await response.json();
      if (!response.ok) { alert(data.error || "无法显示"); return; }
      document.getElementById("field-" + data.field).textContent = data.value;
      form.remove();
    });
  }
}

function watchQueue(root) {
  // Reload the queue's markup every 2 seconds, unless the agent is typing in it. The fresh nodes
  // are moved in as parsed (the server escaped every name), never re-parsed from a string.
  setInterval(async () => {
    if (document.activeElement && document.activeElement.tagName === "INPUT") return;
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("queue");
    if (fresh) root.replaceChildren(...Array.from(fresh.childNodes, (node) => document.importNode(node, true)));
  }, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  const conversation = document.getElementById("conversation");
  if (conversation) { watchTranscript(conversation); wireReply(); wireReveal(); }
  const queue = document.getElementById("queue");
  if (queue) watchQueue(queue);
});
