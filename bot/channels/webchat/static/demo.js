/* The demo page's login area: pick a demo customer (GET demo-users, POST demo-login) or stay
 * anonymous; the widget keeps the token and reconnects. */
(function () {
  "use strict";

  const widget = window.CarebotWidget;
  const base = widget.server + "/webhooks/webchat";
  const form = document.getElementById("demo-login-form");
  const select = document.getElementById("demo-user");
  const logout = document.getElementById("demo-logout");
  const identity = document.getElementById("demo-identity");

  function showIdentity(state) {
    identity.textContent = state.loggedIn ? "当前身份：" + state.name : "当前身份：访客";
    logout.hidden = !state.loggedIn;
  }

  function fillUsers(users) {
    users.forEach((entry) => {
      const option = document.createElement("option");
      option.value = entry.user;
      option.textContent = entry.name + "（" + entry.user + "）";
      select.appendChild(option);
    });
    form.hidden = false;
  }

  function loginOff() {
    document.getElementById("demo-off").hidden = false;
  }

  async function loadUsers() {
    try {
      const response = await fetch(base + "/demo-users");
      if (!response.ok) return loginOff();
      fillUsers(await response.json());
    } catch (error) {
      loginOff();
    }
  }

  async function login(event) {
    event.preventDefault();
    const response = await fetch(base + "/demo-login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: select.value }),
    });
    if (!response.ok) return loginOff();
    widget.login(await response.json());
    widget.open();
  }

  window.addEventListener("carebot:identity", (event) => showIdentity(event.detail));
  form.addEventListener("submit", login);
  logout.addEventListener("click", () => widget.logout());
  showIdentity(widget.identity());
  loadUsers();
})();
