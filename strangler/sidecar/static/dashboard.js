// The dashboard's behaviour: the admin token for this tab's session, figures polled from
// the JSON endpoints, and the rollout controls. The token travels only in an
// Authorization header sent by fetch (never a cookie), so another site cannot forge a
// request with it; the sidecar also refuses cross-site writes by Origin/Sec-Fetch-Site.
"use strict";

(function () {
  const TOKEN_KEY = "strangler-admin-token";
  const script = document.currentScript;
  const refreshMs = Number(script.dataset.refreshMs) || 3000;
  const $ = (id) => document.getElementById(id);

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    let json = null;
    try {
      json = await answer.json();
    } catch (_) {
      json = null;
    }
    return { ok: answer.ok, status: answer.status, json };
  }

  function refusal(result) {
    const message = result.json && (result.json.message || result.json.error);
    return `refused (${result.status})${message ? ": " + message : ""}`;
  }

  function text(id, value) {
    $(id).textContent = value;
  }

  function fillRows(id, rows) {
    const body = $(id);
    body.replaceChildren(
      ...rows.map((cells) => {
        const tr = document.createElement("tr");
        for (const cell of cells) {
          const td = document.createElement("td");
          td.textContent = cell;
          tr.appendChild(td);
        }
        return tr;
      })
    );
  }

  function fillList(id, items) {
    $(id).replaceChildren(
      ...items.map((item) => {
        const li = document.createElement("li");
        li.textContent = item;
        return li;
      })
    );
  }

  const seconds = (s) =>
    s === null || s === undefined ? "-" : s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(1)} s`;
  const pct = (f) => (f === null || f === undefined ? "-" : `${(f * 100).toFixed(2)} %`);
  const interval = (i) => (i && i.total ? `${pct(i.low)} to ${pct(i.high)}` : "-");

  function showTokenState() {
    text("token-state", token()
      ? "Token set for this browser session."
      : "No token: figures and controls need the admin token.");
  }

  function showRollout(state) {
    text("rollout-enabled", state.enabled ? "yes" : "no (killed: every order goes to legacy)");
    text("rollout-percentage", `${state.rollout}%`);
    const variants = Object.entries(state.variants || {}).map(([n, w]) => `${n}=${w}%`);
    text("rollout-variants", variants.join(" ") || "none");
    text("rollout-revision", state.revision);
    text("rollout-mode", `${state.mode} (${state.source})`);
  }

  function showVerdict(report) {
    const verdict = report.verdict || { status: "?", checks: [] };
    const status = $("verdict-status");
    status.textContent = verdict.status;
    status.className = verdict.status;
    fillList("verdict-checks", (verdict.checks || []).map((c) => `${c.status}: ${c.name}: ${c.reason}`));
    const win = report.window || {};
    text("report-window", win.since
      ? `(the current step: orders routed since ${win.since})`
      : "(all orders: the current step's start is not on the rollout timeline)");
  }

  function showReport(report) {

    const paths = report.paths || [];
    const total = paths.reduce((n, p) => n + p.orders, 0);
    fillRows("paths-body", paths.map((p) => [
      p.group, p.orders, total ? pct(p.orders / total) : "-", p.terminal,
      seconds(p.times.p50), seconds(p.times.p90), seconds(p.times.p99), seconds(p.times.max),
      p.fallbacks, p.legacy_owned,
    ]));
    fillRows("fallbacks-body", paths.flatMap((p) =>
      (p.causes || []).map((c) => [p.group, c.handoff, c.cause, c.orders])));

    const shadow = report.shadow || { steps: [], not_compared_reasons: {} };
    text("shadow-summary",
      `${shadow.orders} shadow orders: ${shadow.compared} compared, ${shadow.not_compared} not compared`);
    fillRows("steps-body", (shadow.steps || []).map((s) => [
      s.step, `${s.shadow.successes}/${s.shadow.total}`, pct(s.shadow.rate), interval(s.shadow),
      s.noise && s.noise.total ? `${pct(s.noise.rate)} (${interval(s.noise)})` : "-",
    ]));
    fillList("not-compared", Object.entries(shadow.not_compared_reasons || {})
      .map(([reason, n]) => `${reason}: ${n}`));

    const events = (report.rollout || []).slice(-10).reverse();
    fillRows("events-body", events.map((e) =>
      [e.at, e.actor, e.from_rollout === null ? "-" : `${e.from_rollout}%`, `${e.to_rollout}%`, e.reason]));
  }

  // The figures are the window the gate judges: orders routed since the current step
  // began (the sidecar finds it, and keeps the report for a few seconds).
  async function poll() {
    const [rollout, report] = await Promise.all([
      api("GET", "/_strangler/rollout"),
      api("GET", "/_strangler/report?since=step"),
    ]);
    if (rollout.ok) showRollout(rollout.json);
    if (report.ok) {
      showReport(report.json);
      showVerdict(report.json);
    }
    const problems = [];
    if (!rollout.ok) problems.push(`rollout ${refusal(rollout)}`);
    if (!report.ok) problems.push(`report ${refusal(report)}`);
    text("refresh-state", problems.length
      ? problems.join("; ")
      : `figures as of ${new Date().toLocaleTimeString()}`);
  }

  // At most one poll in flight: asked again meanwhile (after a change), it polls once
  // more when the current poll ends. The timer polls refreshMs after the last poll ended,
  // so a slow report never stacks polls.
  let inFlight = null;
  let again = false;
  function refresh() {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    inFlight = poll().finally(() => {
      inFlight = null;
      if (again) {
        again = false;
        refresh();
      }
    });
    return inFlight;
  }

  async function tick() {
    try {
      await refresh();
    } finally {
      setTimeout(tick, refreshMs);
    }
  }

  async function change(body, describe) {
    const result = await api("PUT", "/_strangler/rollout", body);
    if (result.ok) {
      showRollout(result.json);
      text("control-result", result.json.changed ? describe(result.json) : "no change: already so");
    } else {
      text("control-result", refusal(result));
    }
    await refresh();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    $("token-input").value = "";
    showTokenState();
    refresh();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
    refresh();
  });
  $("percentage-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const percentage = Number($("percentage-input").value);
    change({ percentage, reason: $("percentage-reason").value },
      (s) => `rollout set to ${s.rollout}%`);
  });
  $("kill-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!window.confirm("Kill the rollout? Every new order goes to the legacy path at once.")) {
      text("control-result", "kill cancelled");
      return;
    }
    change({ enabled: false, reason: $("kill-reason").value }, () => "rollout killed");
  });
  $("enable-apply").addEventListener("click", () => {
    const reason = $("kill-reason").value || "enabled again from the dashboard";
    change({ enabled: true, reason }, (s) => `rollout enabled at ${s.rollout}%`);
  });

  showTokenState();
  tick();
})();
