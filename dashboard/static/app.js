// Racklet rack dashboard: the admin API's data drawn as the rack, kept live
// by its event stream. Everything is built with textContent: no HTML from
// the server is ever parsed.
"use strict";
const API = "/api/v1/admin/";
const $ = (id) => document.getElementById(id);
const cards = new Map();
let pending = [];
let rollouts = [];
let consoleAbort = null;

// The session is an HttpOnly cookie set by the login page (/ui/login); a
// change also carries the CSRF header, which no other site can send.
function headers(extra) {
  return Object.assign({ "X-Racklet-Csrf": "1" }, extra || {});
}

function signIn() { location.assign("/ui/login"); }

async function api(path, opts) {
  opts = opts || {};
  const r = await fetch(API + path, Object.assign({}, opts, { headers: headers(opts.headers), credentials: "same-origin" }));
  if (r.status === 401) { signIn(); throw new Error("not signed in"); }
  const body = r.headers.get("Content-Type")?.startsWith("application/json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function stateText(c) {
  if (c.state === "booting" && c.stage) return "booting: " + c.stage;
  if (c.state === "failed") return "failed";
  return c.state;
}

function slot(c) {
  const p = c.power || {};
  const power = !p.connected ? "no BMC" : (p.on ? "on" : "off");
  const ab = p.connected ? "slot " + (p.slot || "A") + (p.nextSlot && p.nextSlot !== p.slot ? " → " + p.nextSlot : "") : "slot ?";
  const a = el("a", { href: "#node/" + encodeURIComponent(c.name),
    "aria-label": `${c.name}, slot ${c.slot}, power ${power}, ${stateText(c)}, ${ab}, attestation ${c.attestation}` },
    el("span", { class: "n", text: c.name }),
    el("span", { class: "pos", text: "#" + c.slot }),
    el("span", { class: "pw", "data-on": String(!!p.on && !!p.connected), text: power }),
    el("span", { class: "st" }, el("span", { class: "badge", text: stateText(c) })),
    el("span", { class: "meta", text: `${ab} · ${c.image} · attest ${c.attestation}` +
      (c.ab && c.ab.state !== "committed" ? ` · a/b ${c.ab.state}${c.ab.flagged ? " (flagged)" : ""}` : "") }));
  return el("li", { class: "slot", "data-node": c.name, "data-state": c.state, "data-power": power }, a);
}

function renderRack() {
  const list = [...cards.values()].sort((a, b) => a.slot - b.slot);
  $("rack").replaceChildren(...list.map(slot));
  $("count").textContent = `(${list.length})`;
}

function updateCard(c) {
  cards.set(c.name, c);
  const old = document.querySelector(`.slot[data-node="${CSS.escape(c.name)}"]`);
  if (old) old.replaceWith(slot(c)); else renderRack();
  if (current() === c.name) { showFacts(c); loadTimeline(c.name); }
}

function renderPending() {
  $("pending-none").hidden = pending.length > 0;
  $("pending").replaceChildren(...pending.map((p, i) => {
    const name = el("input", { id: "as-" + i, name: "as", required: "", pattern: "[a-z0-9]([a-z0-9-]*[a-z0-9])?", placeholder: "pi-17" });
    // A key asking to be a node of the config is approved for that node only.
    if (p.node) { name.value = p.node; name.readOnly = true; }
    const kind = el("select", { id: "kind-" + i, name: "kind" },
      ...["rpi4", "rpi5", "uefi-arm64", "uefi-x86_64", "bios"].map((k) => {
        const o = el("option", { value: k, text: k }); if ((p.kind || "rpi4") === k) o.selected = true; return o;
      }));
    const msg = el("p", { role: "status", "aria-live": "polite" });
    const form = el("form", { "data-serial": p.serial },
      el("div", {}, el("label", { for: "as-" + i, text: "Node name" }), name),
      el("div", {}, el("label", { for: "kind-" + i, text: "Kind" }), kind),
      el("button", { type: "submit", text: "Approve" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const r = await api("enrolments/approve", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ ref: p.fingerprint, as: name.value, kind: kind.value, by: "dashboard" }) });
        msg.textContent = `Approved as ${r.node} (${r.fingerprint}).`;
      } catch (e) { msg.textContent = "Not approved: " + e.message; }
    });
    return el("li", { "data-serial": p.serial },
      el("strong", { text: "Serial " + p.serial }), " ",
      el("span", { class: "muted", text: (p.mac ? "MAC " + p.mac + " · " : "") + (p.kind || "kind unknown") + " · seen " + new Date(p.lastSeen).toLocaleString() }),
      el("div", {}, "HAT key fingerprint: ", el("code", { text: p.fingerprint })),
      p.node ? el("p", { text: "Asks to be node " + p.node + " of the config." }) : null,
      p.conflict ? el("p", { class: "conflict", role: "alert", text: "Conflict: several keys ask to be " + p.node +
        ". Approve only the key whose fingerprint you checked on the machine (racklet-agent identity)." }) : null,
      form, msg);
  }));
}

function short(d) {
  const m = /^(sha256:)([0-9a-f]{12})/.exec(d || "");
  return m ? m[1] + m[2] : (d || "—");
}

// renderRollouts draws each group's rollout: phase, progress, the operator's
// buttons, and its nodes (slot, image, A/B state, attempts, last reason).
function renderRollouts() {
  $("rollout-none").hidden = rollouts.length > 0;
  $("rollouts").replaceChildren(...rollouts.map((g) => {
    const phase = g.phase + (g.paused ? " (paused)" : "");
    const msg = el("p", { role: "status", "aria-live": "polite" });
    const act = (action, label, enabled) => {
      const b = el("button", { type: "button", "data-rollout": action, text: label });
      if (!enabled) b.disabled = true;
      b.addEventListener("click", async () => {
        msg.textContent = `${label}…`;
        try {
          const st = await api(`rollouts/${encodeURIComponent(g.group)}/${action}`, { method: "POST",
            headers: { "Content-Type": "application/json" }, body: JSON.stringify({ by: "dashboard" }) });
          msg.textContent = `${label}: ${st.phase}${st.paused ? " (paused)" : ""}`;
          rollouts = rollouts.map((x) => (x.group === st.group ? st : x));
          renderRollouts();
        } catch (e) { msg.textContent = `${label} failed: ${e.message}`; }
      });
      return b;
    };
    const running = g.phase !== "done";
    const rows = (g.nodes || []).map((n) => el("tr", { "data-node": n.node, class: n.flagged ? "fail" : "" },
      el("td", {}, el("a", { href: "#node/" + encodeURIComponent(n.node), text: n.node })),
      el("td", { text: n.slot }), el("td", {}, el("code", { text: short(n.image) })),
      el("td", { text: n.state + (n.flagged ? " (flagged)" : "") }),
      el("td", { text: n.allowed ? `${n.attempt}/${n.allowed}` : "—" }), el("td", { text: n.reason || "" })));
    const table = el("table", {}, el("thead", {}, el("tr", {}, ...["Node", "Slot", "Image", "State", "Attempts", "Reason"]
      .map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, ...rows));
    return el("li", { "data-group": g.group, "data-phase": g.phase, "data-paused": String(!!g.paused) },
      el("strong", { text: g.group }), " ", el("span", { class: "badge", text: phase }),
      el("div", { class: "muted", text: `batch ${g.batch} · ${g.atTarget}/${g.total} at ${g.to} · ${g.trying} out of service · ${g.failed} failed` }),
      g.reason ? el("div", { text: g.reason }) : null,
      el("div", { class: "actions", role: "group", "aria-label": "Rollout of " + g.group },
        act("pause", "Pause", running && !g.paused), act("resume", "Resume", g.paused || g.phase === "halted" || (!running && g.from !== g.to)),
        act("undo", "Undo", g.from !== g.to)),
      msg, el("details", {}, el("summary", { text: `Nodes (${rows.length})` }), el("div", { class: "scroll" }, table)));
  }));
}

async function loadRollouts() {
  try { rollouts = await api("rollouts"); renderRollouts(); } catch (e) { /* shown by the stream state */ }
}

// stream reads the server-sent events of the admin API (with fetch) and
// reconnects when it ends.
async function stream() {
  let wait = 1000;
  for (;;) {
    try {
      const r = await fetch(API + "stream", { headers: headers(), credentials: "same-origin" });
      if (r.status === 401) { $("live").textContent = "sign in to see the rack"; signIn(); return; }
      if (!r.ok || !r.body) throw new Error(r.statusText);
      $("live").textContent = "live";
      wait = 1000;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          let event = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) handle(event, JSON.parse(data));
        }
      }
    } catch (e) { /* reconnect below */ }
    $("live").textContent = "reconnecting…";
    await new Promise((res) => setTimeout(res, wait));
    wait = Math.min(wait * 2, 10000);
  }
}

function handle(event, data) {
  if (event === "rack") {
    cards.clear();
    for (const c of data.nodes || []) cards.set(c.name, c);
    pending = data.pending || [];
    renderRack(); renderPending();
    loadRollouts();
    document.body.dataset.ready = "true";
  } else if (event === "node") updateCard(data);
  else if (event === "pending") { pending = data || []; renderPending(); }
  else if (event === "rollouts") { rollouts = data || []; renderRollouts(); }
}

function current() {
  const m = location.hash.match(/^#node\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

function showFacts(c) {
  const p = c.power || {};
  const facts = [["State", stateText(c)], ["Power", p.connected ? (p.on ? "on" : "off") + ` (wanted ${p.want ? "on" : "off"} by ${p.wantBy})` : "HAT not connected"],
    ["Boot", p.connected ? String(p.boot) : "—"], ["A/B slot", p.connected ? (p.slot || "A") + " (next " + (p.nextSlot || "A") + ")" : "—"],
    ["Image", c.image], ["A/B", c.ab ? `${c.ab.state}${c.ab.flagged ? " (flagged)" : ""}, slot ${c.ab.slot}, ${short(c.ab.image)}` +
      (c.ab.allowed ? `, attempt ${c.ab.attempt} of ${c.ab.allowed}` : "") + (c.ab.reason ? `: ${c.ab.reason}` : "") : "—"],
    ["Attestation", c.attestation], ["Kind", c.kind], ["Serial", c.serial || "—"], ["MAC", c.mac || "—"], ["Address", c.addr || "—"],
    ["HAT key", p.key || "—"]];
  $("node-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

async function loadTimeline(name) {
  const evs = await api(`nodes/${encodeURIComponent(name)}/timeline?limit=200`).catch(() => []);
  $("timeline").tBodies[0].replaceChildren(...evs.slice().reverse().map((e) => {
    const detail = el("td", { text: e.detail || "" });
    if (e.console) {
      const b = el("button", { type: "button", text: `console boot ${e.console.boot}, lines ${e.console.from}–${e.console.to}` });
      b.addEventListener("click", () => showConsole(name, e.console));
      detail.append(" ", b);
    }
    return el("tr", { class: e.console ? "fail" : "" }, el("td", { text: new Date(e.time).toLocaleString() }), el("td", { text: e.type }), detail);
  }));
}

// showConsole shows one boot's console with the referenced lines marked.
async function showConsole(name, ref) {
  if (consoleAbort) consoleAbort.abort();
  const r = await fetch(API + `nodes/${encodeURIComponent(name)}/console?boot=${ref.boot}`, { headers: headers(), credentials: "same-origin" });
  const text = r.ok ? await r.text() : "";
  const first = Number(r.headers.get("X-Racklet-First-Line") || 1);
  const pre = $("console");
  pre.replaceChildren();
  text.split("\n").forEach((line, i) => {
    const n = first + i;
    const node = document.createTextNode(line + "\n");
    if (n >= ref.from && n <= ref.to) pre.append(el("mark", { "data-line": String(n) }, node)); else pre.append(node);
  });
  pre.querySelector("mark")?.scrollIntoView({ block: "center" });
  pre.focus();
}

// followConsole streams the node's console into the page while it is shown.
async function followConsole(name) {
  if (consoleAbort) consoleAbort.abort();
  consoleAbort = new AbortController();
  const pre = $("console");
  pre.textContent = "";
  try {
    const r = await fetch(API + `nodes/${encodeURIComponent(name)}/console?follow=1`, { headers: headers(), credentials: "same-origin", signal: consoleAbort.signal });
    if (!r.ok || !r.body) { pre.textContent = "(no console captured yet)"; return; }
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(value);
      if (pre.textContent.length > 400000) pre.textContent = pre.textContent.slice(-300000);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
  } catch (e) { /* left the page */ }
}

function route() {
  const name = current();
  $("node-view").hidden = !name;
  $("rack-view").hidden = !!name;
  $("rollout-view").hidden = !!name;
  $("pending-view").hidden = !!name;
  if (!name) { if (consoleAbort) consoleAbort.abort(); return; }
  $("node-h").textContent = name;
  $("node-msg").textContent = "";
  api(`nodes/${encodeURIComponent(name)}`).then(showFacts).catch((e) => { $("node-msg").textContent = e.message; });
  loadTimeline(name);
  followConsole(name);
  $("node-h").setAttribute("tabindex", "-1");
  $("node-h").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("[data-power]")) {
    b.addEventListener("click", async () => {
      const name = current(); const action = b.dataset.power;
      $("node-msg").textContent = `power ${action}…`;
      try {
        const st = await api(`nodes/${encodeURIComponent(name)}/power`, { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ action, by: "dashboard" }) });
        $("node-msg").textContent = `power ${action}: done` + (st.note ? ` (${st.note})` : "");
      } catch (e) { $("node-msg").textContent = `power ${action} failed: ${e.message}`; }
    });
  }
  window.addEventListener("hashchange", route);
  route();
  stream();
});
