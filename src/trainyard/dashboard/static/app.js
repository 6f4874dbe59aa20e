/* trainyard dashboard: live run pages (server-sent events), charts (uPlot), promote dialogs, try-a-model form.
   No framework, no build step; everything here is served by trainyard itself. */
(function () {
  "use strict";
  var PALETTE = ["#2457c5", "#d0632b", "#1d7f46", "#8e44ad", "#b3261e", "#0f8b8d", "#a86400", "#5b6b82", "#c2185b", "#3f51b5"];

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "-";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e4 ? v.toPrecision(digits || 4) : v.toFixed(digits || 4);
  }
  function fmtDuration(s) {
    if (s === null || s === undefined) return "-";
    s = Math.max(0, s);
    if (s < 60) return s.toFixed(1) + "s";
    var m = Math.floor(Math.round(s) / 60), sec = Math.round(s) % 60;
    if (m < 60) return m + "m " + (sec < 10 ? "0" : "") + sec + "s";
    var h = Math.floor(m / 60); m = m % 60;
    return h + "h " + (m < 10 ? "0" : "") + m + "m";
  }
  function compact(v) { return v === null || v === undefined ? "" : JSON.stringify(v); }
  function postJSON(url, body) {
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "Accept": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok) {
            var msg = data.error ? data.error + (data.fix ? " " + data.fix : "") : (data.detail ? JSON.stringify(data.detail) : "request failed (" + r.status + ")");
            throw new Error(msg);
          }
          return data;
        });
      });
  }

  /* ---------------------------------------------------------------- charts */
  function Chart(container, title, xLabel, names, opts) {
    opts = opts || {};
    this.container = container;
    container.textContent = "";
    container.appendChild(el("div", { "class": "chart-title" }, title));
    var width = Math.max(320, container.clientWidth - 18);
    var series = [{ label: xLabel }].concat(names.map(function (n, i) {
      return { label: n, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: true, value: function (u, v) { return fmt(v); } };
    }));
    var config = {
      width: width, height: opts.height || 240, series: series,
      scales: { x: { time: !!opts.time } },
      cursor: { drag: { x: true, y: false, setScale: true } },
      legend: { live: true },
      axes: [{ label: opts.time ? null : xLabel }, { size: 60 }],
      hooks: { setScale: [function (u, key) {  // the visible x range, readable from the page (zoom is testable)
        if (key === "x" && u.scales.x.min !== null) container.setAttribute("data-x-range", [u.scales.x.min, u.scales.x.max].map(function (v) { return +v.toFixed(3); }).join(","));
      }] }
    };
    if (opts.configure) opts.configure(config);  // other pages' charts (bars, reliability curves) adjust the options
    this.plot = new uPlot(config, [[]].concat(names.map(function () { return []; })), container);
    var self = this, lastWidth = width;
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var w = Math.max(320, container.clientWidth - 18);
        if (Math.abs(w - lastWidth) > 4) { lastWidth = w; self.plot.setSize({ width: w, height: opts.height || 240 }); }
      }).observe(container);
    }
  }
  Chart.prototype.setData = function (data) {
    this.plot.setData(data);
    this.container.setAttribute("data-points", String(data[0].length));
  };

  /* One chart per metric key, x = step; values keyed by step so a resumed run overwrites, not duplicates. */
  function StepSeries() { this.steps = []; this.values = []; }
  StepSeries.prototype.add = function (step, value) {
    var n = this.steps.length;
    if (n === 0 || step > this.steps[n - 1]) { this.steps.push(step); this.values.push(value); return; }
    var i = this.steps.indexOf(step);
    if (i >= 0) { this.values[i] = value; return; }
    var j = 0; while (j < n && this.steps[j] < step) j++;
    this.steps.splice(j, 0, step); this.values.splice(j, 0, value);
  };

  /* ---------------------------------------------------------------- run page */
  function runPage() {
    var body = document.body, runId = body.getAttribute("data-run-id");
    if (!runId) return;
    var higherBetter = body.getAttribute("data-higher-better") === "true";
    var metricName = body.getAttribute("data-metric");
    var curves = $("#curves"), series = {}, charts = {}, dirty = {}, trials = [], trialChart = null, pending = false;
    var recorded = $("#run-best").getAttribute("data-recorded") === "true" ? true : null, leaderboardTop = null;

    function chartFor(key) {
      if (!charts[key]) {
        var empty = $("#curves-empty"); if (empty) empty.remove();
        var box = el("div", { "class": "chart", "data-key": key, "id": "chart-" + key.replace(/[^A-Za-z0-9_-]/g, "_") });
        curves.appendChild(box);
        charts[key] = new Chart(box, key, key.indexOf("node_cpu.") === 0 ? "seconds" : "step", [key]);
      }
      return charts[key];
    }
    function singleValue(key, s) {  // a metric logged once (a test score, a throughput) is a number, not a curve
      var table = $("#single-values"), row = $("tr[data-key='" + key.replace(/'/g, "") + "']", table);
      if (s === null) { if (row) row.remove(); table.hidden = !$("tbody tr", table); return; }
      if (!row) {
        row = el("tr", { "data-key": key });
        [key, "", ""].forEach(function (text, i) { row.appendChild(el("td", i ? { "class": "num" } : {}, text)); });
        $("tbody", table).appendChild(row);
      }
      row.children[1].textContent = s.steps[0];
      row.children[2].textContent = fmt(s.values[0]);
      table.hidden = false;
      var empty = $("#curves-empty"); if (empty && !Object.keys(charts).length) empty.textContent = "No curves yet (only single values below).";
    }
    function render() {
      pending = false;
      Object.keys(dirty).forEach(function (key) {
        var s = series[key];
        if (s.steps.length < 2 && !charts[key]) { singleValue(key, s); return; }
        singleValue(key, null);
        chartFor(key).setData([s.steps.slice(), s.values.slice()]);
      });
      dirty = {};
    }
    function schedule() { if (!pending) { pending = true; window.requestAnimationFrame(render); } }

    function renderTrials() {
      var ranked = trials.slice().sort(function (a, b) {
        if (a.val_score === null || a.val_score === undefined) return 1;
        if (b.val_score === null || b.val_score === undefined) return -1;
        return higherBetter ? b.val_score - a.val_score : a.val_score - b.val_score;
      });
      leaderboardTop = ranked.length && ranked[0].val_score !== null && ranked[0].val_score !== undefined ? ranked[0] : null;
      bestSoFar();
      var tbody = $("#leaderboard tbody");
      tbody.textContent = "";
      ranked.forEach(function (t, i) {
        var tr = el("tr", { "data-trial": t.number });
        tr.appendChild(el("td", { "class": "num" }, t.val_score === null || t.val_score === undefined ? "-" : i + 1));
        tr.appendChild(el("td", { "class": "num" }, t.number));
        var fam = el("td", {}, t.family);
        if (t.extra && t.extra.node) fam.appendChild(el("span", { "class": "muted small node", title: "Ray node" }, " @" + t.extra.node));
        tr.appendChild(fam);
        var st = el("td"); st.appendChild(el("span", { "class": "status " + t.status }, t.status)); tr.appendChild(st);
        tr.appendChild(el("td", { "class": "num" }, fmt(t.val_score)));
        tr.appendChild(el("td", { "class": "num" }, fmt(t.fit_seconds, 2)));
        tr.appendChild(el("td", { "class": "num" }, fmt(t.predict_ms_per_row, 4)));
        tr.appendChild(el("td", { "class": "num" }, fmt(t.memory_mb, 1)));
        var detail = t.message ? String(t.message).split("\n")[0] : compact(t.params), cell = el("td", { "class": "small json" });
        cell.appendChild(el("div", { "class": "clamp", title: detail }, detail));  // three lines; hover for all of it
        tr.appendChild(cell);
        tbody.appendChild(tr);
      });
      var scored = trials.filter(function (t) { return t.val_score !== null && t.val_score !== undefined; });
      if (!scored.length) return;
      if (!trialChart) {
        var empty = $("#curves-empty"); if (empty) empty.remove();
        var box = el("div", { "class": "chart", "id": "chart-trials", "data-key": "trials" });
        curves.insertBefore(box, curves.firstChild);
        trialChart = new Chart(box, "validation " + metricName + " by trial", "trial", ["trial score", "best so far"]);
      }
      var xs = [], ys = [], best = [], b = null;
      trials.slice().sort(function (a, c) { return a.number - c.number; }).forEach(function (t) {
        if (t.val_score === null || t.val_score === undefined) return;
        b = b === null ? t.val_score : (higherBetter ? Math.max(b, t.val_score) : Math.min(b, t.val_score));
        xs.push(t.number); ys.push(t.val_score); best.push(b);
      });
      trialChart.setData([xs, ys, best]);
    }

    function liveAudit(rows) {  // a run that is still training has no report file yet: its findings come as events
      var table = $("#audit-live");
      if (!table) return;
      var whole = [], single = [];
      rows.forEach(function (e) {
        if (e.kind !== "audit" || !e.data) return;
        if (Array.isArray(e.data.findings)) whole = whole.concat(e.data.findings); else if (e.data.severity) single.push(e.data);
      });
      var found = whole.length ? whole : single;
      if (!found.length || (table.getAttribute("data-whole") === "true" && !whole.length)) return;
      var tbody = $("tbody", table);
      if (whole.length) { tbody.textContent = ""; table.setAttribute("data-whole", "true"); }
      found.forEach(function (f) {
        var tr = el("tr", { "class": "sev-" + f.severity }), sev = el("td");
        sev.appendChild(el("span", { "class": "status " + f.severity }, f.severity));
        tr.appendChild(sev);
        [f.column || (f.columns || []).join(", ") || "-", f.what || "", f.why || "", f.fix || ""].forEach(function (t) { tr.appendChild(el("td", {}, t)); });
        tbody.appendChild(tr);
      });
      table.hidden = false;
      var empty = $("#audit-empty"); if (empty) empty.remove();
    }

    function addEvents(rows) {
      liveAudit(rows);
      var list = $("#events");
      $$(".placeholder", list).forEach(function (n) { n.remove(); });
      rows.forEach(function (e) {
        var li = el("li", { "data-event": e.id });
        li.appendChild(el("span", { "class": "kind" }, e.kind));
        li.appendChild(document.createTextNode(" " + (e.message || "") + " "));
        li.appendChild(el("span", { "class": "muted small" }, (e.created_at || "").replace("T", " ").slice(0, 19)));
        list.appendChild(li);
      });
    }

    function bestSoFar() {  // while a search runs, the run records no best score yet: show the best trial's
      if (recorded !== null && recorded !== undefined) return;
      var best = leaderboardTop;
      if (!best) return;
      $("#run-best").textContent = fmt(best.val_score);
      $("#run-best-family").textContent = best.family + " (best trial so far)";
    }
    function setStatus(s) {
      var badge = $("#run-status");
      badge.textContent = s.status; badge.className = "status " + s.status;
      recorded = s.best_score;
      $("#run-best").textContent = fmt(s.best_score);
      $("#run-best-family").textContent = s.best_family || "";
      bestSoFar();
      $("#run-duration").textContent = fmtDuration(s.duration_s);
      if (s.status !== "running") $("#live-note").textContent = "";
      var model = $("#run-model"), name = body.getAttribute("data-run-name");
      if (s.model_version && name && !$("a", model)) {  // registered while the page was open
        model.textContent = "";
        model.appendChild(el("a", { href: "/models/" + encodeURIComponent(name) + "/" + s.model_version }, name + "@" + s.model_version));
      }
    }

    var source = new EventSource("/api/runs/" + encodeURIComponent(runId) + "/stream");
    function nodeCpu(m) {  // a Ray node's CPU use, sampled while a cluster run goes: one live row per node
      var table = $("#nodes"), node = m.key.slice("node_cpu.".length), row = $("tr[data-node='" + node.replace(/'/g, "") + "']", table);
      if (!row) {
        row = el("tr", { "data-node": node });
        [node, "", ""].forEach(function (text, i) { row.appendChild(el("td", i ? { "class": "num" } : {}, text)); });
        $("tbody", table).appendChild(row);
      }
      row.children[1].textContent = fmt(m.value);
      row.children[2].textContent = m.step;
      table.hidden = false;
    }
    source.addEventListener("metrics", function (ev) {
      JSON.parse(ev.data).forEach(function (m) {
        if (m.value === null || m.value === undefined) return;
        if (m.key.indexOf("node_cpu.") === 0) nodeCpu(m);
        (series[m.key] = series[m.key] || new StepSeries()).add(m.step, m.value);
        dirty[m.key] = true;
      });
      schedule();
    });
    source.addEventListener("trials", function (ev) {
      JSON.parse(ev.data).forEach(function (t) { trials.push(t); });
      renderTrials();
    });
    source.addEventListener("events", function (ev) { addEvents(JSON.parse(ev.data)); });
    source.addEventListener("run", function (ev) { setStatus(JSON.parse(ev.data)); });
    source.addEventListener("end", function () { source.close(); body.setAttribute("data-stream", "ended"); });
    source.addEventListener("open", function () { body.setAttribute("data-stream", "open"); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  /* ---------------------------------------------------------------- dialogs */
  function confirmDialog(title, text) {
    var dlg = $("#confirm-dialog");
    $("#confirm-title").textContent = title;
    $("#confirm-text").textContent = text;
    return new Promise(function (resolve) {
      dlg.addEventListener("close", function onClose() { dlg.removeEventListener("close", onClose); resolve(dlg.returnValue === "ok"); });
      dlg.returnValue = "";
      dlg.showModal();
    });
  }
  function flash(text, isError) {
    var box = $("#flash");
    if (!box) return;
    box.hidden = false; box.textContent = text; box.className = "flash" + (isError ? " error" : "");
  }
  function setAlias(name, alias, version) {
    return postJSON("/api/models/" + encodeURIComponent(name) + "/aliases", { alias: alias, version: version })
      .then(function (res) {
        sessionStorage.setItem("trainyard-flash", res.name + "@" + res.alias + " now points at v" + res.version +
          (res.previous ? " (was v" + res.previous + ")." : "."));
        window.location.reload();
      })
      .catch(function (err) { flash(err.message, true); });
  }

  function modelsPage() {
    var saved = sessionStorage.getItem("trainyard-flash");
    if (saved) { sessionStorage.removeItem("trainyard-flash"); flash(saved, false); }
    var dlg = $("#promote-dialog");
    var target = null;
    $$(".js-promote").forEach(function (btn) {
      btn.addEventListener("click", function () {
        target = { name: btn.getAttribute("data-name"), version: parseInt(btn.getAttribute("data-version"), 10) };
        $("#promote-ref").textContent = target.name + "@" + target.version;
        $("#promote-note").textContent = "Servers that load " + target.name + "@ALIAS switch to v" + target.version + ".";
        dlg.returnValue = "";
        dlg.showModal();
      });
    });
    if (dlg) {
      $("#promote-cancel").setAttribute("formnovalidate", "");
      dlg.addEventListener("close", function () {
        if (dlg.returnValue === "ok" && target) setAlias(target.name, $("#promote-alias").value.trim(), target.version);
      });
    }
    $$(".js-alias").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var name = btn.getAttribute("data-name"), alias = btn.getAttribute("data-alias"), version = parseInt(btn.getAttribute("data-version"), 10);
        confirmDialog(btn.getAttribute("data-action") + " " + name + "@" + alias + "?", "Point " + name + "@" + alias + " at v" + version + ".")
          .then(function (ok) { if (ok) setAlias(name, alias, version); });
      });
    });
  }

  /* ---------------------------------------------------------------- try a model */
  function tryForm() {
    var form = $("#try-form");
    if (!form) return;
    var select = $("#try-model"), fields = $("#try-fields"), result = $("#try-result"), current = null;

    function field(col) {
      var label = el("label", { "data-column": col.name }, col.name + " (" + col.role + ")");
      var input;
      if (col.role === "text") {
        input = el("textarea", { name: col.name, rows: "2" });
      } else if (col.role === "numeric") {
        input = el("input", { name: col.name, type: "number", step: "any",
          placeholder: col.min !== null && col.min !== undefined ? fmt(col.min, 3) + " .. " + fmt(col.max, 3) : "" });
      } else {
        input = el("input", { name: col.name, type: "text", list: "cats-" + col.name });
        if (col.categories && col.categories.length) {
          var dl = el("datalist", { id: "cats-" + col.name });
          col.categories.forEach(function (c) { dl.appendChild(el("option", { value: c })); });
          label.appendChild(dl);
          input.setAttribute("placeholder", col.categories.slice(0, 3).join(", "));
        }
      }
      label.appendChild(input);
      return label;
    }
    function load() {
      result.hidden = true;
      fetch("/api/models/" + encodeURIComponent(select.value) + "/schema", { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json().then(function (d) { if (!r.ok) throw new Error(d.error || "cannot read the schema"); return d; }); })
        .then(function (schema) {
          current = schema; fields.textContent = "";
          schema.columns.forEach(function (c) { fields.appendChild(field(c)); });
          form.setAttribute("data-ready", "true");
        })
        .catch(function (err) { fields.textContent = err.message; });
    }
    select.addEventListener("change", load);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var row = {};
      $$("input, textarea", fields).forEach(function (i) { row[i.name] = i.value; });
      postJSON("/api/models/" + encodeURIComponent(select.value) + "/predict", { rows: [row] })
        .then(function (res) {
          result.hidden = false; result.textContent = "";
          var p = res.predictions[0] || {};
          result.appendChild(el("div", { "class": "muted small" }, res.model));
          var tbl = el("table", { "class": "grid", id: "try-output" });
          Object.keys(p).forEach(function (k) {
            var tr = el("tr"); tr.appendChild(el("td", {}, k)); tr.appendChild(el("td", { "class": "num" }, fmt(p[k]))); tbl.appendChild(tr);
          });
          result.appendChild(tbl);
        })
        .catch(function (err) { result.hidden = false; result.textContent = err.message; });
    });
    load();
  }

  /* ---------------------------------------------------------------- monitoring */
  function monitoringPage() {
    var block = $("#monitoring-data"), fallback = $("#monitoring-fallback");
    var xs, volume, drift, perf, perfName, driftTitle;
    if (block) {  // trainyard.monitor's report: periods (days), drift score per feature against training
      var t = JSON.parse(block.textContent);
      xs = t.periods.map(function (p) { return Date.parse(p + (p.length <= 10 ? "T00:00:00Z" : "")) / 1000; });
      volume = t.rows; drift = t.scores; perf = t.performance; perfName = t.metric;
      driftTitle = "drift score per feature (1 = drift threshold)";
    } else if (fallback) {  // no reference profile: PSI against the first bucket of traffic
      var d = JSON.parse(fallback.textContent);
      xs = d.buckets.map(function (b) { return Date.parse(b) / 1000; });
      volume = d.volume; drift = d.drift; perf = d.performance ? d.performance.values : null;
      perfName = d.performance ? d.performance.metric : null;
      driftTitle = "PSI per feature";
    } else {
      return;
    }
    var vol = $("#volume-chart");
    if (vol) new Chart(vol, "predictions per period", "time", ["predictions"], { time: true }).setData([xs, volume]);
    var chart = $("#drift-chart"), names = Object.keys(drift || {});
    if (chart && names.length) {
      new Chart(chart, driftTitle, "time", names, { time: true, height: 280 })
        .setData([xs].concat(names.map(function (n) { return drift[n]; })));
    }
    var pc = $("#performance-chart");
    if (pc && perf) new Chart(pc, perfName + " once labels arrived", "time", [perfName], { time: true }).setData([xs, perf]);
  }

  function start() {
    runPage();
    modelsPage();
    tryForm();
    monitoringPage();
  }
  window.trainyard = { $: $, $$: $$, el: el, fmt: fmt, PALETTE: PALETTE, Chart: Chart };  // for page scripts (compare.js)
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
