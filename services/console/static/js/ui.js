// Small DOM and wording helpers shared by every page. No framework: plain ES modules.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value);
  }
  append(el, children);
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

const TIME = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
});
const CLOCK = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
export const when = (iso) => (iso ? TIME.format(new Date(iso)) : "—");
export const clock = (iso) => (iso ? CLOCK.format(new Date(iso)) : "—");

export const STATUS = {
  received: "已收到", accepted: "已受理", triage: "待人工分类", triaged: "已分类", dispatched: "已交办", in_progress: "办理中",
  returned: "已退单", called: "乡呼县应", suspended: "暂停计时", resolved: "已答复", verified: "已核验",
  closed: "已销号", rated: "已评价", reopened: "重办", rejected: "不予受理", merged: "已并单",
  signed: "已签收", reassigned: "已改派",
};
export const ROLE = {
  grid_worker: "网格员", village_staff: "村（社区）干部", township_staff: "乡镇工作人员", township_head: "乡镇负责人",
  dept_clerk: "部门办事员", dept_head: "部门负责人", centre_dispatcher: "中心派单员", centre_supervisor: "中心督查员",
  auditor: "审计", ops: "运维",
};
export const SUBJECT = {
  infrastructure: "基础设施", environment: "生态环境", public_safety: "公共安全", social_security: "社会保障",
  disputes: "矛盾纠纷", consultation: "政策咨询", housing: "住房", transport: "交通出行", agriculture: "农业农村", other: "其他",
};
export const QUEUE = { to_sign: "待签收", in_progress: "办理中", due_soon: "临期", overdue: "超期", returned: "退单", resolved: "已答复" };
export const CLOCK_NAME = {
  accept: "受理", dispatch: "派单", sign: "签收", first_contact: "首次联系", resolve: "办结", return_window: "退单期限",
  response: "响应", verify: "核验", callback: "回访", survey: "现场勘查",
};
export const CHANNEL = { app: "App", wechat: "微信小程序", hotline: "12345热线", grid: "网格员上报", window: "窗口", mailbox: "信箱" };
export const URGENCY = { normal: "一般", urgent: "紧急", emergency: "特急" };
export const label = (map, key) => (key ? map[key] || key : "—");

// A problem+json answer (RFC 9457) shown the way staff can act on it.
export function problemBox(problem) {
  const box = h("div", { class: "problem", role: "alert", "data-testid": "problem" },
    h("strong", {}, `${problem.status || ""} ${problem.title || "出错了"}`), " ", problem.detail || "");
  if (problem.allowed_actions) box.append(h("div", { class: "muted" }, `当前状态 ${problem.state || ""}，允许的操作：${problem.allowed_actions.join("、") || "无"}`));
  for (const err of problem.errors || []) box.append(h("div", { class: "muted" }, `${err.field}: ${err.message}`));
  return box;
}

export function toast(text, kind = "ok") {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = `show ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = ""; }, 4000);
}

export function table(columns, rows, { empty = "暂无", testid } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "table-wrap" }, h("table", { "data-testid": testid },
    h("thead", {}, h("tr", {}, columns.map(([, title]) => h("th", {}, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([key, , render]) => h("td", {}, render ? render(row) : row[key] ?? "—")))))));
}

export const caseLink = (caseId, text) => h("a", { href: `#/case/${encodeURIComponent(caseId)}` }, text || caseId);
