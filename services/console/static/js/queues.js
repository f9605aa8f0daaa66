// 单位工作台: a unit's orders to sign, in progress, due soon, overdue, returned, answered — and its SLA cards.
import { get, post, settle } from "./api.js";
import { h, clear, when, label, QUEUE, STATUS, CLOCK_NAME, table, caseLink, problemBox, toast } from "./ui.js";

export async function renderQueues(root, unitArg, ctx) {
  const user = ctx.user;
  let units = [];
  try { units = (await get("directory", "units")).items; } catch { units = []; }
  const county = units.find((u) => u.code === user.unit)?.parent || ctx.config.county;
  // Centre staff may open any unit of the county; others their own unit.
  const choices = user.centre
    ? units.filter((u) => (u.kind === "department" || u.kind === "township") && u.parent === county)
    : units.filter((u) => u.code === user.unit);
  const unit = unitArg || (user.centre ? choices[0]?.code : user.unit);
  const queueName = "to_sign";
  const picker = h("select", { "data-testid": "unit-picker", onchange: (e) => { location.hash = `#/queues/${e.target.value}`; } },
    (choices.length ? choices : [{ code: unit, name: unit }]).map((u) => h("option", { value: u.code, selected: u.code === unit }, u.short_name || u.name)));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "单位工作台"), picker));
  if (!unit) { root.append(h("p", { class: "muted" }, "你的账号没有所属单位。")); return; }
  const body = h("div");
  root.append(body);
  const show = async (queue) => {
    const [page, soon, overdue] = await settle([
      get("dispatch", `units/${encodeURIComponent(unit)}/orders`, { queue, limit: 50 }),
      get("sla", `units/${encodeURIComponent(unit)}/clocks`, { view: "due_soon", limit: 50 }),
      get("sla", `units/${encodeURIComponent(unit)}/clocks`, { view: "overdue", limit: 50 }),
    ]);
    clear(body);
    if (page.error) { body.append(problemBox(page.error)); return; }
    body.append(h("div", { class: "tabs", role: "tablist" }, Object.entries(QUEUE).map(([key, title]) =>
      h("button", { class: key === queue ? "tab active" : "tab", "data-queue": key, onclick: () => show(key) },
        `${title} `, h("span", { class: `badge ${key === "overdue" ? "red" : key === "due_soon" ? "yellow" : ""}` }, String(page.counts[key] ?? 0))))));
    body.append(table([
      ["order_no", "交办单"], ["tracking_no", "诉求", (o) => caseLink(o.case_id, o.tracking_no)], ["title", "标题"],
      ["state", "状态", (o) => label(STATUS, o.state)], ["due_at", "期限", (o) => when(o.due_at)],
      ["actions", "操作", (o) => (o.allowed_actions || []).includes("sign") && o.unit === user.unit
        ? h("button", { "data-sign": o.order_no, onclick: async (e) => {
          e.currentTarget.disabled = true;
          try { await post("dispatch", `orders/${encodeURIComponent(o.order_no)}/sign`, {}, o.version); toast(`已签收 ${o.order_no}`); show(queue); }
          catch (err) { body.prepend(problemBox(err.problem || { detail: String(err) })); }
        } }, "签收")
        : caseLink(o.case_id, "查看")],
    ], page.items, { empty: `${QUEUE[queue]}：无`, testid: "queue" }));
    const clocks = (got, colour, title) => h("section", {}, h("h2", {}, title), got.error ? problemBox(got.error) : table([
      ["case_id", "案件", (c) => caseLink(c.case_id, c.case_id.slice(0, 8))], ["name", "时限", (c) => label(CLOCK_NAME, c.name)],
      ["due_at", "到期", (c) => when(c.due_at)], ["remaining_text", colour === "red" ? "已超期" : "剩余"],
    ], got.items, { empty: "无" }));
    body.append(h("div", { class: "split" }, clocks(overdue, "red", "红牌（超期）"), clocks(soon, "yellow", "黄牌（临期）")));
    if (PEOPLE_READERS.has(user.role)) body.append(await peopleSection(unit));
  };
  await show(queueName);
}

// 个人绩效: the unit's handling people this month — for its head and the centres above it only
// (scoring refuses everyone else, the person's peers included).
const PEOPLE_READERS = new Set(["township_head", "dept_head", "centre_dispatcher", "centre_supervisor", "auditor"]);

async function peopleSection(unit) {
  const [got] = await settle([get("scoring", `units/${encodeURIComponent(unit)}/people`, { period: "month" })]);
  return h("section", { "data-testid": "people" }, h("h2", {}, "人员绩效（本月）"), got.error ? problemBox(got.error) : table([
    ["rank", "排名", (p) => p.rank ?? "—"], ["name", "承办人", (p) => p.name || p.person], ["score", "综合得分", (p) => p.score ?? "—"],
    ["orders", "交办单", (p) => p.counts.orders], ["response", "响应率", (p) => p.rates.response],
    ["on_time_resolution", "按时办结率", (p) => p.rates.on_time_resolution], ["resolution", "解决率", (p) => p.rates.resolution],
    ["satisfaction", "满意率", (p) => p.rates.satisfaction], ["reopen_rate", "重办率", (p) => p.rates.reopen_rate],
    ["return_rate", "退单率", (p) => p.rates.return_rate],
  ], got.people || [], { empty: "本月尚无经办人员的交办单。" }));
}
