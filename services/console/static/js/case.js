// 案件详情: timeline, dispatch orders and work plan, clocks, photos, callback and rating, and the actions the role allows.
import { get, post, settle } from "./api.js";
import { h, clear, when, label, STATUS, SUBJECT, CLOCK_NAME, ROLE, CHANNEL, URGENCY, problemBox, toast, table } from "./ui.js";

const CENTRE = new Set(["centre_dispatcher", "centre_supervisor"]);
const PRIMARY = new Set(["sign", "claim", "review", "decide"]);
const TOWNSHIP = new Set(["township_staff", "township_head"]);

// Which order actions this user gets buttons for (the service still decides; this only hides the impossible).
export function orderActions(user, order) {
  const allowed = new Set(order.allowed_actions || []);
  const own = user.unit === order.unit;
  const out = [];
  if (own && allowed.has("sign")) out.push("sign");
  // 村级: claim / report up are the village's, pass down the township's (only they are offered them).
  if (allowed.has("claim")) out.push("claim");
  if (allowed.has("report_up")) out.push("report_up");
  if (allowed.has("pass_down")) out.push("pass_down");
  if (own && allowed.has("return")) out.push("return");
  if (own && allowed.has("survey")) out.push("survey");
  if (own && allowed.has("file_plan")) out.push("plan");
  if (own && allowed.has("report_progress")) out.push("progress");
  if (own && allowed.has("request_extension")) out.push("extension");
  if (own && allowed.has("resolve")) out.push("resolve");
  if (CENTRE.has(user.role) && allowed.has("review_return")) out.push("review");
  if (CENTRE.has(user.role) && allowed.has("decide_extension")) out.push("decide");
  return out;
}

export async function renderCase(root, caseId, ctx) {
  const user = ctx.user;
  const [appeal, orders, clocks, callbacks, ratings, org] = await settle([
    get("intake", `appeals/${encodeURIComponent(caseId)}`), get("dispatch", `cases/${encodeURIComponent(caseId)}/orders`),
    get("sla", `cases/${encodeURIComponent(caseId)}/clocks`), get("notify", `cases/${encodeURIComponent(caseId)}/callbacks`),
    get("scoring", "ratings", { case_id: caseId }), get("directory", "units"),
  ]);
  const units = org.error ? [] : org.items;
  const unitName = (code) => { const u = units.find((x) => x.code === code); return u ? u.short_name || u.name : code || "—"; };
  const reload = () => { const page = clear(root); renderCase(page, caseId, ctx).catch((e) => page.append(problemBox(e.problem || { detail: String(e) }))); };
  if (appeal.error) { root.append(h("h1", {}, "案件"), problemBox(appeal.error)); return; }

  root.append(h("div", { class: "page-head" },
    h("h1", { "data-testid": "case-title" }, appeal.title),
    h("span", { class: `status s-${appeal.status}`, "data-testid": "case-status" }, label(STATUS, appeal.status))));
  root.append(h("dl", { class: "facts" },
    fact("编号", appeal.tracking_no), fact("渠道", label(CHANNEL, appeal.channel)), fact("五事", appeal.category || "待分类"),
    fact("类别", label(SUBJECT, appeal.subject_class)), fact("紧急程度", label(URGENCY, appeal.urgency)),
    fact("乡镇", appeal.township || "—"), fact("村（社区）", appeal.village || "—"), fact("网格", appeal.grid || "—"),
    fact("联系电话", appeal.contact_phone), fact("受理期限", when(appeal.accept_due_at)), fact("收到", when(appeal.created_at)),
    // 首问负责制 and 谁接待、谁负责: who answers for the case whoever handles it, and who took it at the window.
    ...(appeal.first_unit ? [fact("首问负责单位", appeal.first_unit_name || unitName(appeal.first_unit))] : []),
    ...(appeal.received_by ? [fact("接待人", appeal.received_by)] : []),
    ...(appeal.resolve_due_at ? [fact("1小时办结期限", when(appeal.resolve_due_at))] : [])));
  root.append(h("p", { class: "description" }, appeal.description));
  if (appeal.rejection_reason) root.append(h("p", { class: "warn" }, `不予受理：${appeal.rejection_reason}`));
  if (appeal.merged_into) root.append(h("p", { class: "warn" }, "已并入 ", h("a", { href: `#/case/${appeal.merged_into}` }, appeal.merged_into)));

  const grid = h("div", { class: "case-grid" });
  root.append(grid);
  const left = h("div", {}), right = h("div", {});
  grid.append(left, right);

  // Actions first: what this user can do now.
  const actions = h("section", { class: "card actions", "data-testid": "actions" }, h("h2", {}, "可办理的操作"));
  left.append(actions);
  const orderList = orders.error ? [] : orders.orders || [];
  await caseActions(actions, user, caseId, appeal, orderList, orders, units, reload);
  for (const order of orderList) {
    for (const action of orderActions(user, order)) {
      const el = orderActionForm(action, order, reload);
      // The usual next step stays open; the others fold away so the page stays short.
      actions.append(PRIMARY.has(action) ? el : h("details", { class: "more", "data-more": `${action}-${order.order_no}` }, h("summary", {}, el.querySelector("h3").textContent), el));
    }
  }
  if (actions.childElementCount === 1) actions.append(h("p", { class: "muted" }, `${ROLE[user.role] || user.role}在此案件当前状态下没有可办理的操作。`));

  left.append(h("section", { class: "card" }, h("h2", {}, "交办单与施工图"),
    orders.error ? problemBox(orders.error) : orderList.length ? orderList.map(orderView) : h("p", { class: "muted" }, "尚未交办。")));

  right.append(h("section", { class: "card" }, h("h2", {}, "时限"), clocks.error
    ? h("p", { class: "muted" }, clocks.error.status === 404 ? "尚无计时。" : clocks.error.detail)
    : table([
      ["name", "时限", (c) => label(CLOCK_NAME, c.name)], ["unit", "单位", (c) => unitName(c.unit)], ["due_at", "到期", (c) => when(c.due_at)],
      ["remaining_text", "剩余", (c) => h("span", { class: c.overdue ? "red-text" : "" }, c.state === "stopped" ? (c.on_time ? "按时" : "超时完成") : c.remaining_text)],
      ["signals_fired", "预警", (c) => (c.signals_fired || []).join("、") || "—"],
    ], clocks.clocks, { testid: "clocks" })));

  const photos = photoIds(appeal, orderList);
  right.append(h("section", { class: "card" }, h("h2", {}, "照片与附件"), photos.length
    ? h("div", { class: "photos" }, photos.map((id) => h("a", { href: `/api/intake/attachments/${id}`, target: "_blank" },
      h("img", { src: `/api/intake/attachments/${id}`, alt: "附件", loading: "lazy" }))))
    : h("p", { class: "muted" }, "无")));

  right.append(h("section", { class: "card" }, h("h2", {}, "回访与评价"),
    callbacks.error ? problemBox(callbacks.error) : table([
      ["round", "轮次", (c) => (c.round ? `重办第${c.round}轮` : "首办")], ["opens_at", "回访开始", (c) => when(c.opens_at)],
      ["due_at", "回访期限", (c) => when(c.due_at)],
      ["state", "状态"], ["attempts", "拨打次数"], ["rating", "评价", (c) => c.rating || "—"],
    ], callbacks, { empty: "尚无回访（办结后的下一个工作日回访）。" }),
    ratings.error ? null : table([
      ["unit", "被评单位", (r) => unitName(r.unit)], ["rating", "乡镇评价", (r) => r.rating || r.score || "—"], ["comment", "说明"],
    ], ratings.items || [], { empty: "尚无乡镇对部门的评价。" })));

  right.append(h("section", { class: "card" }, h("h2", {}, "办理过程"), h("ol", { class: "timeline", "data-testid": "timeline" },
    appeal.timeline.map((e) => h("li", {}, h("time", {}, when(e.occurred_at)), " ", h("strong", {}, e.label), e.detail ? ` — ${e.detail}` : "")))));
}

const fact = (term, value) => h("div", {}, h("dt", {}, term), h("dd", {}, value ?? "—"));

function photoIds(appeal, orders) {
  const ids = new Set(appeal.attachments || []);
  for (const order of orders) for (const entry of order.history || []) for (const id of entry.detail?.attachments || []) ids.add(id);
  return [...ids];
}

function orderView(order) {
  const plan = order.plan;
  return h("article", { class: "order", "data-order-no": order.order_no },
    h("header", {}, h("strong", {}, order.order_no), " ", order.unit_name || order.unit, " ",
      h("span", { class: `status s-${order.state}`, "data-testid": "order-state" }, label(STATUS, order.state)),
      order.role === "co" || order.role === "lead" ? h("span", { class: "muted" }, ` （${order.role === "co" ? "协办" : "牵头"}）`) : null,
      order.redo_round ? h("span", { class: "muted" }, ` 重办第${order.redo_round}轮`) : null),
    h("div", { class: "meta" }, `交办 ${when(order.dispatched_at)} · 期限 ${when(order.due_at)} · ${order.automatic ? "按派单目录自动交办" : "人工派单"}`),
    order.instructions ? h("div", {}, `要求：${order.instructions}`) : null,
    order.survey_due_at && !order.survey ? h("div", { class: "meta" }, `现场勘查期限 ${when(order.survey_due_at)}`) : null,
    order.survey ? h("div", { class: "survey" }, h("strong", {}, "现场勘查："),
      `${when(order.survey.at)} ${order.survey.findings}（照片 ${order.survey.attachments.length} 张${order.survey.on_time ? "" : "，超期勘查"}）`) : null,
    plan ? h("div", { class: "plan" }, h("strong", {}, "施工图："), `${plan.measures}；计划完成 ${when(plan.planned_finish_at)}；责任人 ${plan.responsible}`) : null,
    order.answer ? h("div", {}, h("strong", {}, "答复："), order.answer) : null,
    h("details", {}, h("summary", {}, `流转记录（${(order.history || []).length}）`), h("ul", {}, (order.history || []).map((e) =>
      h("li", {}, `${when(e.at)} ${e.action} · ${e.actor}（${ROLE[e.role] || e.role}）${e.detail ? " " + JSON.stringify(e.detail) : ""}`)))));
}

// ---------------------------------------------------------------- forms

function form(title, testid, fields, submit, onDone) {
  const out = h("div", { class: "result" });
  const el = h("form", { class: "action", "data-action": testid },
    h("h3", {}, title),
    fields.map((f) => h("label", {}, h("span", {}, f.label), field(f))),
    h("button", { type: "submit" }, title), out);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(out);
    const data = Object.fromEntries(fields.map((f) => [f.name, value(el.elements[f.name], f)]).filter(([, v]) => v !== undefined));
    el.querySelector("button[type=submit]").disabled = true;
    try {
      await submit(data);
      toast(`${title}：已完成`);
      onDone();
    } catch (err) {
      out.append(problemBox(err.problem || { detail: String(err) }));
      el.querySelector("button[type=submit]").disabled = false;
    }
  });
  return el;
}

function field(f) {
  if (f.type === "select") return h("select", { name: f.name }, f.options.map(([v, t]) => h("option", { value: v, selected: v === f.value }, t)));
  if (f.type === "textarea") return h("textarea", { name: f.name, rows: 2, placeholder: f.placeholder || "" }, f.value || "");
  if (f.type === "checkbox") return h("input", { type: "checkbox", name: f.name, checked: !!f.value });
  return h("input", { type: f.type || "text", name: f.name, value: f.value ?? "", placeholder: f.placeholder || "", min: f.min, max: f.max });
}

function value(input, f) {
  if (f.type === "checkbox") return input.checked;
  const v = input.value.trim();
  if (v === "") return f.optional ? undefined : v;
  if (f.type === "number") return Number(v);
  if (f.type === "datetime-local") return new Date(v).toISOString();
  if (f.bool) return v === "true";
  return v;
}

const BOOL = [["true", "是"], ["false", "否"]];

function orderActionForm(action, order, reload) {
  const no = encodeURIComponent(order.order_no);
  const act = (path, body) => post("dispatch", `orders/${no}/${path}`, body, order.version);
  const tag = `${action}-${order.order_no}`;
  switch (action) {
    case "sign": return form(`签收 ${order.order_no}`, tag, [], () => act("sign", {}), reload);
    case "claim": return form(`认领 ${order.order_no}`, tag, [], () => act("claim", {}), reload);
    case "report_up": return form("上报乡镇", tag, [{ name: "reason", label: "上报理由", type: "textarea" }], (d) => act("report-up", d), reload);
    case "pass_down": return form("交由村级办理（下派）", tag, [
      { name: "reason", label: "理由", type: "textarea" }, { name: "village", label: "村（社区）代码（默认案件所在村）", optional: true },
    ], (d) => act("pass-down", d), reload);
    case "return": return form("退单", tag, [
      { name: "reason_code", label: "退单原因", type: "select", options: [["not_our_duty", "不属本单位职责"], ["wrong_area", "不属本辖区"], ["insufficient_info", "信息不全"], ["duplicate", "重复诉求"], ["other", "其他"]] },
      { name: "reason", label: "说明", type: "textarea" }, { name: "suggested_unit", label: "建议承办单位（代码）", optional: true },
    ], (d) => act("return", d), reload);
    case "survey": return form("现场勘查", tag, [
      { name: "findings", label: "勘查情况", type: "textarea" }, { name: "attachments", label: "现场照片（附件编号，逗号分隔）" },
    ], (d) => act("survey", { findings: d.findings, attachments: String(d.attachments || "").split(/[,，\s]+/).filter(Boolean) }), reload);
    case "plan": return form("制定施工图", tag, [
      { name: "measures", label: "措施", type: "textarea" }, { name: "planned_finish_at", label: "计划完成", type: "datetime-local" },
      { name: "responsible", label: "责任人" }, { name: "contact", label: "联系电话", optional: true },
    ], (d) => act("plan", d), reload);
    case "progress": return form("报告进展", tag, [
      { name: "note", label: "进展", type: "textarea" }, { name: "percent", label: "完成 %", type: "number", min: 0, max: 100, optional: true },
      { name: "first_contact", label: "已首次联系群众", type: "checkbox" },
    ], (d) => act("progress", d), reload);
    case "extension": return form("申请延期", tag, [
      { name: "working_days", label: "延期工作日", type: "number", min: 1, max: 180 }, { name: "reason", label: "理由", type: "textarea" },
      { name: "long_cycle", label: "长周期事项", type: "checkbox" },
    ], (d) => act("extensions", d), reload);
    case "resolve": return form("办结答复", tag, [
      { name: "answer", label: "答复群众", type: "textarea" }, { name: "solved", label: "已解决", ...selectOf(BOOL) },
    ], (d) => act("resolve", d), reload);
    case "review": return form(`审核退单 ${order.order_no}`, tag, [
      { name: "upheld", label: "退单理由成立（改派）", ...selectOf(BOOL) },
      { name: "redispatch_to", label: "改派给（单位代码）", optional: true, value: "" }, { name: "comment", label: "意见", type: "textarea", optional: true },
    ], (d) => post("dispatch", `orders/${no}/review`, d, order.version), reload);
    case "decide": {
      const pending = (order.history || []).map((e) => e.detail?.request_id).filter(Boolean).pop() || "";
      return form("审批延期", tag, [
        { name: "request_id", label: "延期申请号", value: pending, placeholder: "EXT-…" },
        { name: "approve", label: "批准", ...selectOf(BOOL) }, { name: "reason", label: "意见", type: "textarea", optional: true },
      ], ({ request_id, ...d }) => post("dispatch", `extensions/${encodeURIComponent(request_id)}/decision`, d), reload);
    }
    default: return h("span");
  }
}

const selectOf = (options) => ({ type: "select", options, value: options[0][0], bool: true });

async function caseActions(actions, user, caseId, appeal, orderList, orders, units, reload) {
  const id = encodeURIComponent(caseId);
  const waiting = !orders.error && (orders.stage === "received" || (!orderList.length && !["rejected", "merged", "closed", "rated"].includes(appeal.status)));
  if (CENTRE.has(user.role) && waiting) {
    const county = units.find((u) => u.code === user.unit)?.parent;
    const options = units.filter((u) => (u.kind === "department" || u.kind === "township") && (!county || u.parent === county))
      .map((u) => [u.code, `${u.short_name || u.name}（${u.code}）`]);
    actions.append(form("派单", "dispatch", [
      options.length ? { name: "unit", label: "承办单位", type: "select", options } : { name: "unit", label: "承办单位代码" },
      { name: "resolution_class", label: "办理时限类别", type: "select", value: "general", options: [["consultation", "咨询类（1–3个工作日）"], ["general", "一般（5个工作日）"], ["complex", "复杂（15个工作日）"], ["long_cycle", "长周期"]] },
      { name: "instructions", label: "交办要求", type: "textarea", optional: true },
    ], (d) => post("dispatch", `cases/${id}/dispatch`, d), reload));
  }
  const resolved = orderList.some((o) => (o.allowed_actions || []).includes("verify"));
  if (TOWNSHIP.has(user.role) && resolved) {
    actions.append(form("核验销号", "verify", [
      { name: "passed", label: "核验通过", ...selectOf(BOOL) },
      { name: "public_summary", label: "公示内容", type: "textarea", optional: true }, { name: "comment", label: "意见", type: "textarea", optional: true },
    ], (d) => post("dispatch", `cases/${id}/verify`, d), reload));
  }
  // 1小时诉求服务模式: the receiver closes a simple window appeal on the spot, the citizen rating it there
  // (intake refuses anyone else, a case already sent on, or a 不满意 rating).
  if (appeal.resolve_due_at && appeal.received_by === user.id && !orderList.length && !["rejected", "merged", "closed", "rated"].includes(appeal.status)) {
    actions.append(form("当场办结", "close-on-spot", [
      { name: "answer", label: "办理结果", type: "textarea" },
      { name: "rating", label: "群众当场评价", type: "select", value: "满意", options: [["满意", "满意"], ["基本满意", "基本满意"]] },
      { name: "comment", label: "群众意见", type: "textarea", optional: true },
    ], (d) => post("intake", `appeals/${id}/close-on-spot`, d), reload));
  }
  // 乡呼县应 is the township's; 吹哨报到 also the case's village or grid (网格吹哨): as dispatch offers them.
  const caseAllowed = new Set(orders.allowed_actions || []);
  if (caseAllowed.has("call") || caseAllowed.has("whistle")) {
    const call = caseAllowed.has("call");
    actions.append(form(call ? "乡呼县应 / 吹哨报到" : "网格吹哨、部门报到", "call", [
      { name: "units", label: "呼叫的县直部门（代码，逗号分隔）", placeholder: "LB-XC-JTJ" },
      { name: "reason", label: "理由", type: "textarea" },
      { name: "lead_unit", label: call ? "牵头单位（吹哨时填写）" : "牵头单位", optional: call },
    ], (d) => post("dispatch", `cases/${id}/call`, { ...d, units: d.units.split(/[,，\s]+/).filter(Boolean) }), reload));
  }
}
