// 实时看板: counts, yellow/red cards and the tables by township and department, pushed over SSE.
import { call } from "./api.js";
import { h, clear, clock, when, label, STATUS, SUBJECT, CLOCK_NAME, table, caseLink } from "./ui.js";

const TILES = [
  ["received_today", "今日受理", ""], ["in_progress", "办理中", ""], ["due_soon", "临期（黄牌）", "yellow"],
  ["overdue", "超期（红牌）", "red"], ["closed", "已办结", "green"], ["waiting_dispatch", "待派单", ""], ["returned", "退单待审", ""],
];

export async function renderBoard(root, _arg, ctx) {
  const status = h("span", { class: "live", "data-testid": "live-status" }, "连接中…");
  const body = h("div", { class: "board" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "实时看板"), status), body);
  // First paint from GET /board, then every change from the stream.
  draw(body, await call("/board"), status, 0);
  const source = new EventSource("/live");
  source.addEventListener("board", (event) => draw(body, JSON.parse(event.data), status, Number(event.lastEventId)));
  source.addEventListener("error", () => { status.textContent = "重新连接中…"; status.className = "live off"; });
  ctx.onLeave(() => source.close());
}

function draw(body, snap, status, version) {
  status.textContent = `● 实时 · ${clock(snap.as_of)} 更新`;
  status.className = "live on";
  status.dataset.version = String(version);
  clear(body);
  body.dataset.asOf = snap.as_of;
  body.append(h("p", { class: "muted" }, `${snap.county_name}（${snap.county}）`));
  body.append(h("div", { class: "tiles" }, TILES.map(([key, title, colour]) =>
    h("div", { class: `tile ${colour} ${snap.totals[key] && colour ? "hot" : ""}`, "data-testid": `total-${key}` },
      h("div", { class: "num" }, String(snap.totals[key] ?? 0)), h("div", { class: "cap" }, title)))));
  const problems = Object.entries(snap.sources || {});
  if (problems.length) body.append(h("div", { class: "warn", "data-testid": "sources" }, "部分数据暂不可用：", problems.map(([, v]) => v).join("；")));

  const col = (title, cards, cls, testid) => h("section", { class: `column ${cls}`, "data-testid": testid },
    h("h2", {}, `${title}（${cards.length}）`), cards.length ? cards : h("p", { class: "muted" }, "无"));
  const clockCard = (c) => h("a", { class: `case-card ${c.colour}`, href: `#/case/${c.case_id}`, "data-case-id": c.case_id },
    h("div", { class: "title" }, c.title || c.case_id), h("div", { class: "meta" }, c.tracking_no || "", " · ", c.unit_name || ""),
    h("div", { class: "meta" }, `${c.colour === "red" ? "已超期" : "剩余"} ${c.remaining || ""}（${label(CLOCK_NAME, c.clock)}，${when(c.due_at)}）`));
  const waitCard = (c) => h("a", { class: "case-card waiting", href: `#/case/${c.case_id}`, "data-case-id": c.case_id },
    h("div", { class: "title" }, c.title), h("div", { class: "meta" }, c.tracking_no, " · ", c.township_name || "地点待定"),
    h("div", { class: "meta" }, `收到 ${when(c.received_at)} · ${c.triaged ? label(SUBJECT, c.subject_class) : "待分类"}`));
  const returnCard = (o) => h("a", { class: "case-card returned", href: `#/case/${o.case_id}`, "data-case-id": o.case_id },
    h("div", { class: "title" }, o.title), h("div", { class: "meta" }, `${o.tracking_no} · ${o.unit_name || o.unit} 退单`));
  body.append(h("div", { class: "columns" },
    col("红牌 · 超期", snap.cards.red.map(clockCard), "red", "cards-red"),
    col("黄牌 · 临期", snap.cards.yellow.map(clockCard), "yellow", "cards-yellow"),
    col("待派单", snap.cards.waiting.map(waitCard), "waiting", "cards-waiting"),
    col("退单待审核", snap.cards.returned.map(returnCard), "returned", "cards-returned")));

  body.append(h("div", { class: "split" },
    h("section", {}, h("h2", {}, "按乡镇"), table([
      ["name", "乡镇"], ["received_today", "今日受理"], ["in_progress", "办理中"], ["closed", "已办结"],
      ["yellow", "黄牌", (r) => badge(r.yellow, "yellow")], ["red", "红牌", (r) => badge(r.red, "red")],
    ], snap.townships, { testid: "by-township" })),
    h("section", {}, h("h2", {}, "按部门"), table([
      ["name", "部门", (r) => h("a", { href: `#/queues/${r.code}` }, r.name)], ["to_sign", "待签收"], ["in_progress", "办理中"],
      ["due_soon", "临期"], ["overdue", "超期"], ["returned", "退单"], ["yellow", "黄牌", (r) => badge(r.yellow, "yellow")],
      ["red", "红牌", (r) => badge(r.red, "red")],
    ], snap.departments, { testid: "by-department" }))));

  body.append(h("section", {}, h("h2", {}, "最新诉求"), table([
    ["tracking_no", "编号", (r) => caseLink(r.case_id, r.tracking_no)], ["title", "标题"], ["township_name", "乡镇"],
    ["status", "状态", (r) => h("span", { class: `status s-${r.status}`, "data-testid": "recent-status" }, label(STATUS, r.status))],
    ["created_at", "时间", (r) => when(r.created_at)],
  ], snap.recent, { testid: "recent" })));
}

const badge = (n, colour) => (n ? h("span", { class: `badge ${colour}` }, String(n)) : "0");
