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

  const variants = (weights) =>
    Object.entries(weights || {}).map(([n, w]) => `${n}=${w}%`).join(" ") || "none";
  let shownWeight = null;
  const shadowFirst = (state) => state.rollout === 100 && (state.variants || {}).shadow > 0;

  function showRollout(state) {
    const killed = !state.enabled;
    text("rollout-stage", state.stage || "?");
    text("rollout-enabled", killed ? "no (killed: every order goes to legacy)" : "yes");
    text("rollout-percentage", `${state.rollout}%`);
    text("rollout-variants", variants(state.variants));
    const shares = state.shares || {};
    text("rollout-shares", shares.instant === undefined ? "?"
      : `instant ${shares.instant}%, shadow ${shares.shadow}%, ` +
        `legacy only ${Math.round((100 - shares.instant - shares.shadow) * 100) / 100}%`);
    text("rollout-revision", state.revision);
    text("rollout-mode", `${state.mode} (${state.source})`);
    const kill = $("kill-state");
    kill.textContent = killed ? "kill switch: KILLED, every order to legacy" : "kill switch: off (enabled)";
    kill.className = killed ? "kill-state killed" : "kill-state";
    text("stage-state", `stage: ${state.stage || "?"}${killed ? " (killed)" : ""}`);
    const weight = $("weight-form");
    weight.hidden = !shadowFirst(state);
    // Fill the control only when the flag's weight changes, never over what is being typed.
    const instant = (state.variants || {}).instant || 0;
    if (!weight.hidden && instant !== shownWeight) $("weight-input").value = instant;
    shownWeight = weight.hidden ? null : instant;
  }

  // The rollout needs the admin token; the step's figures do not (the sidecar finds
  // where the step began), so only the flag's own state is unknown without it.
  function rolloutUnknown(result) {
    const why = result.status === 401
      ? "the rollout needs the admin token (401)"
      : `the rollout could not be read (${refusal(result)})`;
    text("kill-state", `kill switch: unknown: ${why}`);
    text("stage-state", `stage: unknown: ${why}`);
    $("weight-form").hidden = true;
  }

  function showVerdict(report) {
    const verdict = report.verdict || { status: "?", checks: [] };
    const status = $("verdict-status");
    status.textContent = verdict.status;
    status.className = verdict.status;
    $("verdict-banner").className = `banner ${verdict.status}`;
    fillList("verdict-checks", (verdict.checks || []).map((c) => `${c.status}: ${c.name}: ${c.reason}`));
    const win = report.window || {};
    text("report-window", win.since
      ? `the current step: orders routed since ${win.since}`
      : "all orders: no change is on the rollout timeline yet");
  }

  function wilson(bad, total) {
    if (!total) return [0, 0, 1];
    const z = 1.959964, p = bad / total, z2 = z * z;
    const centre = (p + z2 / (2 * total)) / (1 + z2 / total);
    const half = (z / (1 + z2 / total)) * Math.sqrt(p * (1 - p) / total + z2 / (4 * total * total));
    return [p, Math.max(0, centre - half), Math.min(1, centre + half)];
  }

  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

  function svgNode(name, attributes) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    return node;
  }

  // Draw series of [time ms, value %] (with optional [low, high] bands) on a 600x200 SVG.
  function drawChart(id, series, lines, top) {
    const svg = $(id);
    const all = series.flatMap((s) => s.points);
    const nodes = [];
    const t0 = all.length ? Math.min(...all.map((p) => p[0])) : 0;
    const t1 = all.length ? Math.max(...all.map((p) => p[0]), t0 + 1) : 1;
    const x = (t) => 40 + ((t - t0) / (t1 - t0)) * 550;
    const y = (v) => 190 - (Math.min(v, top) / top) * 180;
    nodes.push(svgNode("text", { x: 2, y: 14, "font-size": 11 }), svgNode("text", { x: 2, y: 192, "font-size": 11 }));
    nodes[0].textContent = `${top}%`;
    nodes[1].textContent = "0%";
    for (const line of lines) {
      nodes.push(svgNode("line", { x1: 40, x2: 590, y1: y(line.value), y2: y(line.value),
        stroke: line.colour, "stroke-dasharray": "6 4", "data-line": line.name }));
    }
    if (all.length) {
      series.forEach((s) => {
        if (s.bands && s.points.length > 1) {
          const upper = s.points.map((p, i) => `${x(p[0])},${y(s.bands[i][1])}`);
          const lower = s.points.map((p, i) => `${x(p[0])},${y(s.bands[i][0])}`).reverse();
          nodes.push(svgNode("polygon", { points: [...upper, ...lower].join(" "), fill: s.colour, "fill-opacity": 0.15 }));
        }
        nodes.push(svgNode("polyline", { points: s.points.map((p) => `${x(p[0])},${y(p[1])}`).join(" "),
          fill: "none", stroke: s.colour, "stroke-width": 2, "data-series": s.name }));
      });
    }
    svg.replaceChildren(...nodes);
  }

  function mismatchChart(report) {
    const shadow = report.shadow || {};
    const steps = [...new Set((shadow.over_time || []).map((p) => p.step))].sort();
    const series = steps.map((step, index) => {
      let bad = 0, total = 0;
      const points = [], bands = [];
      for (const p of shadow.over_time.filter((q) => q.step === step)) {
        bad += p.rate.successes;
        total += p.rate.total;
        if (!total) continue;
        const [rate, low, high] = wilson(bad, total);
        points.push([Date.parse(p.end), rate * 100]);
        bands.push([low * 100, high * 100]);
      }
      return { name: step, colour: COLOURS[index % COLOURS.length], points, bands };
    });
    const threshold = ((report.thresholds || {}).max_mismatch || 0) * 100;
    const highest = Math.max(threshold * 2, 1, ...series.flatMap((s) => s.points.map((p) => p[1])));
    drawChart("mismatch-chart", series, [{ name: "threshold", value: threshold, colour: "#b3261e" }], Math.ceil(highest));
  }

  // The share of orders on instant and shadow after each change (a kill drops both to 0;
  // events recorded before the ledger kept weights count their rollout as instant).
  function shares(event) {
    if (event.enabled === false) return [0, 0];
    if (event.instant_weight === null || event.instant_weight === undefined) return [event.to_rollout, 0];
    const total = event.instant_weight + event.shadow_weight;
    return total ? [event.to_rollout * event.instant_weight / total, event.to_rollout * event.shadow_weight / total] : [0, 0];
  }

  function shareChart(report) {
    const events = report.rollout || [];
    const until = Date.parse((report.window || {}).until || report.generated_at) || Date.now();
    const steps = (pick) => {
      const points = [];
      events.forEach((e, i) => {
        const at = Date.parse(e.at);
        if (i) points.push([at, pick(shares(events[i - 1]))]);
        points.push([at, pick(shares(e))]);
      });
      if (events.length) points.push([until, pick(shares(events[events.length - 1]))]);
      return points;
    };
    drawChart("share-chart", [
      { name: "instant", colour: COLOURS[0], points: steps((s) => s[0]) },
      { name: "shadow", colour: COLOURS[1], points: steps((s) => s[1]) },
    ], [], 100);
  }

  const points = (d) => `${d >= 0 ? "+" : ""}${(d * 100).toFixed(2)} pts`;

  function showArms(report) {
    const ab = report.ab || { differences: {} };
    text("ab-summary", `instant ${ab.instant_orders ?? "?"} orders against legacy ${ab.legacy_orders ?? "?"} orders; a difference whose interval excludes 0 is highlighted`);
    const body = $("ab-body");
    body.replaceChildren(...Object.entries(ab.differences || {}).map(([metric, d]) => {
      const empty = !d.instant.total || !d.legacy.total;
      const cells = [
        metric,
        d.instant.total ? `${pct(d.instant.rate)} (${d.instant.successes}/${d.instant.total})` : "n/a",
        d.legacy.total ? `${pct(d.legacy.rate)} (${d.legacy.successes}/${d.legacy.total})` : "n/a",
        empty ? `n/a (no ${!d.instant.total ? "instant" : "legacy"} orders)`
          : `${points(d.difference)} [${points(d.low)}, ${points(d.high)}]`,
      ];
      const tr = document.createElement("tr");
      if (!empty && (d.low > 0 || d.high < 0)) tr.className = "shift";
      for (const cell of cells) {
        const td = document.createElement("td");
        td.textContent = cell;
        tr.appendChild(td);
      }
      return tr;
    }));
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
    const minNoise = (report.thresholds || {}).min_noise;
    const noiseN = shadow.noise_compared ?? 0;
    text("noise-summary", `noise sample: n = ${noiseN} orders judged twice` +
      (minNoise === undefined ? "" : noiseN < minNoise
        ? ` (below the minimum of ${minNoise}: it excuses nothing)`
        : ` (minimum ${minNoise})`));
    mismatchChart(report);
    shareChart(report);

    const events = (report.rollout || []).slice(-10).reverse();
    fillRows("events-body", events.map((e) => [
      e.at, e.actor, (e.kind || "change") + (e.no_evidence ? " (no evidence)" : ""),
      e.from_rollout === null ? "-" : `${e.from_rollout}%`,
      `${e.to_rollout}%` + (e.enabled === false ? " (killed)" : "") +
        (e.instant_weight === null || e.instant_weight === undefined ? ""
          : ` instant=${e.instant_weight}% shadow=${e.shadow_weight}%`),
      e.stage || "-", e.reason,
    ]));
  }

  // The figures are the window the gate judges: orders routed since the current step
  // began (the sidecar finds it, and keeps the report for a few seconds).
  async function poll() {
    const [rollout, report] = await Promise.all([
      api("GET", "/_strangler/rollout"),
      api("GET", "/_strangler/report?since=step"),
    ]);
    if (rollout.ok) showRollout(rollout.json);
    else rolloutUnknown(rollout);
    if (report.ok) {
      showReport(report.json);
      showArms(report.json);
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
      const done = result.json.changed ? describe(result.json) : "no change: already so";
      // The change stands when only its timeline write failed (docs/flags.md, "One door").
      text("control-result", result.json.timeline_recorded === false
        ? `${done}; it is live but NOT on the rollout timeline, so the report's current ` +
          `step still starts at the change before it: ${result.json.timeline_error}`
        : done);
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
  $("enable-form").addEventListener("submit", (event) => {
    event.preventDefault();
    change({ enabled: true, reason: $("enable-reason").value },
      (s) => `rollout enabled again at ${s.rollout}%`);
  });
  $("stage-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("stage-select").value;
    const stage = { name };
    const percent = $("stage-percent").value;
    if (percent && (name === "shadow" || name === "live")) stage.percent = Number(percent);
    change({ stage, reason: $("stage-reason").value, no_evidence: $("stage-no-evidence").checked },
      (s) => `stage ${s.stage}` + (s.no_evidence ? " (went live without comparison evidence)" : ""));
  });
  $("weight-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const instant = Number($("weight-input").value);
    change({ variants: { instant, shadow: 100 - instant }, reason: $("weight-reason").value },
      (s) => `instant weight set to ${s.variants.instant}% (shadow ${s.variants.shadow}%)`);
  });

  showTokenState();
  tick();
})();
