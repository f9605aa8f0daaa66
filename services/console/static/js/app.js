// The console's router: hash routes (#/board, #/map, #/case/<id>, #/queues/<unit>, #/bulletins, #/grid/<code>, #/risk, #/login).
import { ApiError, call } from "./api.js";
import { h, clear, ROLE, problemBox } from "./ui.js";
import { renderBoard } from "./board.js";
import { renderMap } from "./map.js";
import { renderCase } from "./case.js";
import { renderQueues } from "./queues.js";
import { renderBulletins } from "./bulletins.js";
import { renderGrid } from "./grid.js";
import { renderRisk } from "./risk.js";

const main = document.getElementById("main");
const state = { user: null, config: null, cleanup: null };

async function whoAmI() {
  try {
    state.user = (await call("/auth/me")).user;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    state.user = null;
  }
  const who = clear(document.getElementById("who"));
  document.getElementById("nav").hidden = !state.user;
  if (state.user) {
    who.append(h("span", { "data-testid": "who" }, `${state.user.name} · ${ROLE[state.user.role] || state.user.role}`),
      h("button", { class: "link", onclick: logout }, "退出"));
  }
}

async function logout() {
  await call("/auth/logout", { method: "POST" });
  state.user = null;
  location.hash = "#/login";
  await whoAmI();
}

async function renderLogin(root) {
  root.append(h("h1", {}, "登录", h("span", { class: "dev-sign-in" }, "开发环境登录 (development sign-in)")),
    h("p", { class: "muted" }, "选择一位演示用户（开发环境由签发服务签发令牌；仅在本机回环地址上提供）。"));
  let users;
  try {
    users = (await call("/auth/users")).roles;
  } catch (err) {
    root.append(problemBox(err.problem || { detail: String(err) }));
    return;
  }
  const list = h("div", { class: "login-grid" });
  for (const [role, people] of Object.entries(users)) {
    list.append(h("section", { class: "card" }, h("h3", {}, ROLE[role] || role),
      people.map((person) => h("button", {
        class: "user", "data-user": person.id,
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            await call("/auth/login", { method: "POST", body: { user: person.id } });
            await whoAmI();
            location.hash = defaultPage();
          } catch (err) {
            root.append(problemBox(err.problem || { detail: String(err) }));
            event.currentTarget.disabled = false;
          }
        },
      }, person.name, h("small", {}, person.unit || "")))));
  }
  root.append(list);
}

function defaultPage() {
  if (!state.user) return "#/login";
  return state.user.centre ? "#/board" : "#/queues";
}

async function route() {
  if (state.cleanup) { state.cleanup(); state.cleanup = null; }
  const [page, ...rest] = (location.hash.replace(/^#\/?/, "") || "").split("/");
  const arg = rest.map(decodeURIComponent).join("/");
  if (!state.user && page !== "login") { location.hash = "#/login"; return; }
  if (!page) { location.hash = defaultPage(); return; }
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.dataset.page === page);
  const root = clear(main);
  root.dataset.page = page;
  const ctx = { user: state.user, config: state.config, onLeave: (fn) => { state.cleanup = fn; } };
  const pages = { login: renderLogin, board: renderBoard, map: renderMap, case: renderCase, queues: renderQueues, bulletins: renderBulletins, grid: renderGrid, risk: renderRisk };
  const render = pages[page];
  if (!render) { root.append(h("p", {}, "没有这个页面。")); return; }
  try {
    await render(root, arg, ctx);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { await whoAmI(); location.hash = "#/login"; return; }
    root.append(problemBox(err.problem || { detail: String(err) }));
  }
}

async function start() {
  state.config = await call("/config");
  await whoAmI();
  window.addEventListener("hashchange", route);
  await route();
}

start();
