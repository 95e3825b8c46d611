/*
 * carebot web chat widget: a launcher bubble and a chat panel speaking the webchat channel's
 * socket.io protocol (session_request/session_confirm, history, user_uttered/bot_uttered,
 * bot_ack). Plain ES2017, no build step. Embed it on any page with
 *   <script src="http://host:5005/webhooks/webchat/static/widget.js"
 *           data-server="http://host:5005"></script>
 * The page may call window.CarebotWidget.login({token, user, name}) / .logout() / .open().
 */
(function () {
  "use strict";

  const KEYS = { token: "carebot.token", session: "carebot.session_id", name: "carebot.name" };
  const TYPING_TIMEOUT_MS = 10000;
  const MAX_TEXT = 2000;  /* the channel refuses longer messages */
  const STATUS = { connecting: "连接中…", connected: "已连接", reconnecting: "已断开，正在重连" };

  const script = document.currentScript;
  const server = serverOf(script);
  const base = server + "/webhooks/webchat";

  function serverOf(tag) {
    const declared = tag && tag.dataset.server;
    if (declared) return declared.replace(/\/+$/, "");
    return tag && tag.src ? new URL(tag.src, location.href).origin : location.origin;
  }

  const store = {
    get(key) {
      try { return localStorage.getItem(key); } catch (e) { return null; }
    },
    set(key, value) {
      try {
        if (value === null || value === undefined) localStorage.removeItem(key);
        else localStorage.setItem(key, value);
      } catch (e) { /* private mode: the session lasts as long as the page */ }
    },
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => node.appendChild(child));
    return node;
  }

  function loadOnce(id, make) {
    return new Promise((resolve, reject) => {
      if (document.getElementById(id)) return resolve();
      const node = make();
      node.id = id;
      node.onload = () => resolve();
      node.onerror = () => reject(new Error("could not load " + id));
      document.head.appendChild(node);
    });
  }

  function loadAssets() {
    const css = loadOnce("carebot-widget-css", () =>
      el("link", { rel: "stylesheet", href: base + "/static/widget.css" }));
    const io = window.io ? Promise.resolve() : loadOnce("carebot-socketio", () =>
      el("script", { src: base + "/static/vendor/socket.io.min.js" }));
    return Promise.all([css.catch(() => undefined), io]);
  }

  /* ---------- the view: DOM only, no protocol ---------- */

  function buildView(onSay) {
    const view = buildPanel();
    view.onSay = onSay;
    view.form.addEventListener("submit", (event) => { event.preventDefault(); submit(view); });
    view.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit(view);
      }
    });
    view.launcher.addEventListener("click", () => (view.panel.hidden ? openPanel(view) : closePanel(view)));
    view.close.addEventListener("click", () => closePanel(view));
    view.panel.addEventListener("keydown", (event) => { if (event.key === "Escape") closePanel(view); });
    document.body.appendChild(view.root);
    return view;
  }

  function buildPanel() {
    const view = { unread: 0 };
    view.status = el("p", { class: "cw-status", role: "status", text: STATUS.connecting });
    view.who = el("p", { class: "cw-who" });
    view.close = el("button", { class: "cw-close", type: "button", "aria-label": "关闭对话窗口", text: "×" });
    view.log = el("div", { class: "cw-log", role: "log", "aria-live": "polite", "aria-label": "对话记录", tabindex: "0" });
    view.typing = el("p", { class: "cw-typing", hidden: "", text: "客服助手正在输入…" });
    view.input = el("textarea", { id: "cw-input", class: "cw-input", rows: "1", maxlength: String(MAX_TEXT), placeholder: "请输入您的问题，按 Enter 发送" });
    const label = el("label", { for: "cw-input", class: "cw-sr", text: "输入消息" });
    view.form = el("form", { class: "cw-form" }, [label, view.input, el("button", { class: "cw-send", type: "submit", text: "发送" })]);
    const title = el("h2", { id: "cw-title", class: "cw-title", text: "悦家电器 在线客服" });
    const header = el("header", { class: "cw-header" }, [el("div", {}, [title, view.status, view.who]), view.close]);
    view.panel = el("section", { class: "cw-panel", role: "dialog", "aria-labelledby": "cw-title", hidden: "" }, [header, view.log, view.typing, view.form]);
    view.badge = el("span", { class: "cw-badge", hidden: "", "aria-hidden": "true" });
    view.launcher = el("button", { class: "cw-launcher", type: "button", "aria-label": "打开在线客服", "aria-expanded": "false" }, [chatIcon(), view.badge]);
    view.root = el("div", { id: "carebot-widget", class: "cw-root" }, [view.panel, view.launcher]);
    return view;
  }

  function chatIcon() {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "cw-launcher-icon");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    return svg;
  }

  function submit(view) {
    const text = view.input.value.trim();
    if (!text) return;
    view.input.value = "";
    view.onSay(text, text);
  }

  function openPanel(view) {
    view.panel.hidden = false;
    view.root.classList.add("cw-open");
    view.launcher.setAttribute("aria-expanded", "true");
    view.launcher.setAttribute("aria-label", "收起在线客服");
    setUnread(view, 0);
    scrollDown(view);
    view.input.focus();
  }

  function closePanel(view) {
    view.panel.hidden = true;
    view.root.classList.remove("cw-open");
    view.launcher.setAttribute("aria-expanded", "false");
    view.launcher.setAttribute("aria-label", "打开在线客服");
    view.launcher.focus();
  }

  function setUnread(view, count) {
    view.unread = count;
    view.badge.textContent = String(count);
    view.badge.hidden = count === 0;
  }

  function scrollDown(view) {
    view.log.scrollTop = view.log.scrollHeight;
  }

  function showTyping(view, on) {
    clearTimeout(view.typingTimer);
    view.typing.hidden = !on;
    if (on) view.typingTimer = setTimeout(() => { view.typing.hidden = true; }, TYPING_TIMEOUT_MS);
  }

  function retireQuickReplies(view) {
    view.log.querySelectorAll(".cw-quick button").forEach((button) => { button.disabled = true; });
  }

  function safeUrl(value) {
    try {
      const url = new URL(String(value), location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }

  function imageOf(message) {
    const attachment = message.attachment || {};
    const payload = attachment.payload || {};
    return message.image || payload.src || payload.url || null;
  }

  function choiceGroup(view, choices, quick) {
    const group = el("div", { class: quick ? "cw-choices cw-quick" : "cw-choices", role: "group", "aria-label": "可选回复" });
    choices.forEach((choice) => {
      const link = choice.type === "web_url" && safeUrl(choice.url || choice.payload);
      const node = link
        ? el("a", { class: "cw-chip", href: link, target: "_blank", rel: "noopener noreferrer", text: choice.title })
        : el("button", { class: "cw-chip", type: "button", text: choice.title });
      if (!link) {
        node.addEventListener("click", () => {
          if (quick) group.querySelectorAll("button").forEach((b) => { b.disabled = true; });
          view.onSay(choice.payload || choice.title, choice.title);
        });
      }
      group.appendChild(node);
    });
    return group;
  }

  function renderMessage(view, message) {
    retireQuickReplies(view);
    const sender = message.sender === "user" ? "user" : "bot";
    const bubble = el("div", { class: "cw-msg cw-" + sender });
    if (message.message_id !== undefined && message.message_id !== null) {
      bubble.dataset.messageId = String(message.message_id);
    }
    if (message.created_at) bubble.title = new Date(message.created_at).toLocaleString("zh-CN");
    bubble.appendChild(el("span", { class: "cw-sr", text: sender === "user" ? "我说：" : "客服助手说：" }));
    if (message.text) bubble.appendChild(el("p", { class: "cw-text", text: message.text }));
    const image = imageOf(message) && safeUrl(imageOf(message));
    if (image) bubble.appendChild(el("img", { class: "cw-image", src: image, alt: "图片消息" }));
    if (message.buttons && message.buttons.length) bubble.appendChild(choiceGroup(view, message.buttons, false));
    if (message.quick_replies && message.quick_replies.length) {
      bubble.appendChild(choiceGroup(view, message.quick_replies, true));
    }
    view.log.appendChild(bubble);
    scrollDown(view);
    return bubble;
  }

  function clearLog(view) {
    view.log.textContent = "";
  }

  /* ---------- the connection: protocol only ---------- */

  function createChat() {
    const chat = { socket: null, sessionId: store.get(KEYS.session), confirmed: false, pending: [], shown: new Set(), view: null };
    chat.view = buildView((message, title) => say(chat, message, title));
    showIdentity(chat);
    connect(chat);
    return chat;
  }

  function setStatus(chat, key) {
    chat.view.status.textContent = STATUS[key];
    chat.view.root.dataset.state = key;
  }

  function showIdentity(chat) {
    const name = store.get(KEYS.name);
    chat.view.who.textContent = name ? name + "，您好" : "访客";
    window.dispatchEvent(new CustomEvent("carebot:identity", { detail: { name: name, loggedIn: !!store.get(KEYS.token) } }));
  }

  function connect(chat) {
    const token = store.get(KEYS.token);
    const socket = window.io(server, { path: "/socket.io", forceNew: true, auth: token ? { token: token } : {} });
    chat.socket = socket;
    chat.confirmed = false;
    setStatus(chat, "connecting");
    socket.on("connect", () => socket.emit("session_request", { session_id: store.get(KEYS.session) }));
    socket.on("session_confirm", (sessionId) => confirmSession(chat, sessionId));
    socket.on("history", (payload) => showHistory(chat, payload));
    socket.on("bot_uttered", (message) => receive(chat, message));
    socket.on("disconnect", () => { chat.confirmed = false; setStatus(chat, "reconnecting"); });
    socket.on("connect_error", () => refused(chat, socket));
  }

  function refused(chat, socket) {
    setStatus(chat, "reconnecting");
    if (socket.active || !store.get(KEYS.token)) return;
    forget(chat);  /* the server turned the token down: carry on as an anonymous visitor */
  }

  function confirmSession(chat, payload) {
    const sessionId = typeof payload === "string" ? payload : (payload && payload.session_id);
    chat.sessionId = sessionId;
    store.set(KEYS.session, sessionId);
  }

  /* Ready once the history is on screen: what the customer typed meanwhile is shown after it and
     sent then, so the history, which replaces the log, never swallows a new message. */
  function becomeReady(chat) {
    chat.confirmed = true;
    setStatus(chat, "connected");
    chat.pending.splice(0).forEach((typed) => {
      renderMessage(chat.view, { sender: "user", text: typed.title });
      emitUtterance(chat, typed.message);
    });
  }

  function showHistory(chat, payload) {
    clearLog(chat.view);
    chat.shown.clear();
    const titles = {};
    const messages = ((payload && payload.messages) || []).map(unwrap);
    messages.forEach((message) => {
      const shown = message.sender === "user" && titles[message.text]
        ? Object.assign({}, message, { text: titles[message.text] }) : message;
      renderMessage(chat.view, shown);
      Object.assign(titles, choiceTitles(message));
      if (message.message_id !== undefined) chat.shown.add(message.message_id);
    });
    retireQuickRepliesExceptLast(chat.view);
    acknowledgeHistory(chat, messages);
    becomeReady(chat);
  }

  /* What waited for the customer while they were away is on screen now: say so (acks are
     cumulative, so the newest bot message id covers the rest). */
  function acknowledgeHistory(chat, messages) {
    const ids = messages
      .filter((message) => message.sender === "bot" && Number.isInteger(message.message_id))
      .map((message) => message.message_id);
    if (ids.length && chat.socket) {
      chat.socket.emit("bot_ack", { session_id: chat.sessionId, message_id: Math.max(...ids) });
    }
  }

  /* A clicked choice is stored as its payload ("/points_balance"): show its title again. */
  function choiceTitles(message) {
    const titles = {};
    (message.buttons || []).concat(message.quick_replies || []).forEach((choice) => {
      if (choice.payload) titles[choice.payload] = choice.title;
    });
    return titles;
  }

  function retireQuickRepliesExceptLast(view) {
    const last = view.log.lastElementChild;
    const quick = last && last.classList.contains("cw-bot") && last.querySelector(".cw-quick");
    if (quick) quick.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  }

  /* Our fields travel under `metadata` (where rasa-webchat ignores them): lift them out. */
  function unwrap(message) {
    const meta = (message && message.metadata) || {};
    return Object.assign({}, message, {
      message_id: meta.message_id, sender: meta.sender, created_at: meta.created_at,
    });
  }

  function receive(chat, wire) {
    const message = unwrap(wire);
    const id = message.message_id;
    const isNew = id === undefined || id === null || !chat.shown.has(id);
    if (isNew) {
      showTyping(chat.view, false);
      renderMessage(chat.view, Object.assign({ sender: "bot" }, message));
      if (id !== undefined && id !== null) chat.shown.add(id);
      if (chat.view.panel.hidden) setUnread(chat.view, chat.view.unread + 1);
    }
    if (id !== undefined && id !== null) {
      chat.socket.emit("bot_ack", { session_id: chat.sessionId, message_id: id });
    }
  }

  function say(chat, message, title) {
    showTyping(chat.view, true);
    if (chat.confirmed && chat.socket.connected) {
      renderMessage(chat.view, { sender: "user", text: title });
      emitUtterance(chat, message);
    } else {
      chat.pending.push({ message: message, title: title });  /* shown once the history is */
    }
  }

  function emitUtterance(chat, message) {
    chat.socket.emit("user_uttered", { message: message, session_id: chat.sessionId });
  }

  function reconnect(chat) {
    if (chat.socket) {
      chat.socket.removeAllListeners();
      chat.socket.disconnect();
    }
    clearLog(chat.view);
    chat.shown.clear();
    chat.pending = [];
    showTyping(chat.view, false);
    showIdentity(chat);
    connect(chat);
  }

  function forget(chat) {
    [KEYS.token, KEYS.session, KEYS.name].forEach((key) => store.set(key, null));
    chat.sessionId = null;
    reconnect(chat);
  }

  /* ---------- the page's handle ---------- */

  function publicApi(ready) {
    const later = (fn) => (...args) => ready.then((chat) => fn(chat, ...args));
    return {
      server: server,
      open: later((chat) => openPanel(chat.view)),
      close: later((chat) => closePanel(chat.view)),
      login: later((chat, identity) => {
        store.set(KEYS.token, identity.token);
        store.set(KEYS.name, identity.name || identity.user);
        store.set(KEYS.session, null);
        chat.sessionId = null;
        reconnect(chat);
      }),
      logout: later((chat) => forget(chat)),
      identity: () => ({ name: store.get(KEYS.name), loggedIn: !!store.get(KEYS.token) }),
    };
  }

  function start() {
    return loadAssets().then(createChat);
  }

  const ready = new Promise((resolve) => {
    if (document.body) resolve();
    else document.addEventListener("DOMContentLoaded", () => resolve());
  }).then(start);
  ready.catch((error) => console.error("carebot widget:", error));
  window.CarebotWidget = publicApi(ready);
})();
