/* The labelling page: one item at a time, keyboard first. Every answer carries its own request id, so a retry
   after a dropped connection is recorded once. The status (learning curve, estimate) is polled every 2 s; when a
   new model round lands, the suggestion of the item on screen is refreshed. */
(function () {
  "use strict";
  var cfgNode = document.getElementById("label-config");
  if (!cfgNode) return;
  var cfg = JSON.parse(cfgNode.textContent);
  var base = "/api/label/" + encodeURIComponent(cfg.project);
  var state = { item: null, queue: cfg.queue, busy: false, mine: 0, rounds: -1, plot: null };
  var $ = function (id) { return document.getElementById(id); };

  function requestId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return Date.now().toString(16) + Math.random().toString(16).slice(2, 18);
  }

  function api(method, path, body) {
    var opts = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(base + path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { throw new Error((data.error || r.statusText) + (data.fix ? " " + data.fix : "")); }
        return data;
      });
    });
  }

  function flash(text, isError) {
    var el = $("flash");
    el.textContent = text; el.hidden = !text;
    el.className = "flash" + (isError ? " error" : "");
    if (text && !isError) setTimeout(function () { if (el.textContent === text) el.hidden = true; }, 2500);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fieldsCard(fields) {
    var dl = el("dl", { "class": "row-card" });
    Object.keys(fields || {}).forEach(function (k) {
      dl.appendChild(el("dt", {}, k));
      var v = fields[k];
      dl.appendChild(el("dd", {}, v === null || v === undefined ? "—" : String(v)));
    });
    return dl;
  }

  function showSuggestion(item) {
    var box = $("suggestion");
    document.querySelectorAll(".label-class").forEach(function (b) { b.classList.remove("suggested"); });
    if (!item || item.suggestion === null || item.suggestion === undefined) {
      box.textContent = "no model yet"; box.className = "label-suggestion"; return;
    }
    box.textContent = "model suggests " + item.suggestion + " (" + Math.round(item.confidence * 100) + "% confident)";
    box.className = "label-suggestion has";
    var btn = document.querySelector('.label-class[data-class="' + CSS.escape(item.suggestion) + '"]');
    if (btn) btn.classList.add("suggested");
  }

  function render(view) {
    var item = view && view.item;
    state.item = item || null;
    var body = $("item-body");
    body.textContent = "";
    $("item-empty").hidden = !!item;
    $("labels-given").textContent = "";
    if (!item) { $("item-meta").textContent = ""; showSuggestion(null); return; }
    body.setAttribute("data-item", item.id);
    if (item.kind === "text") {
      body.appendChild(el("div", { "class": "text", "id": "item-text" }, item.text));
      if (item.fields && Object.keys(item.fields).length) body.appendChild(fieldsCard(item.fields));
    } else if (item.kind === "image") {
      body.appendChild(el("img", { "src": item.image, "alt": item.key, "id": "item-image" }));
    } else {
      body.appendChild(fieldsCard(item.fields));
    }
    $("item-meta").textContent = "item " + item.key + " · queue " + (view.queue || state.queue);
    showSuggestion(item);
    var given = [];
    if (item.given !== null && item.given !== undefined) given.push("given label: " + item.given);
    (item.labels || []).forEach(function (l) { given.push(l.annotator + " said " + l.label); });
    $("labels-given").textContent = given.join(" · ");
    $("comment").value = "";
  }

  function next() {
    return api("GET", "/next?queue=" + encodeURIComponent(state.queue)).then(render).catch(function (e) { flash(e.message, true); });
  }

  function answer(label, skip) {
    if (!state.item || state.busy) return;
    state.busy = true;
    var body = { item_id: state.item.id, item_sha256: state.item.sha, label: label, comment: $("comment").value || null,
                 request_id: requestId(), queue: state.queue, skip: !!skip };
    api("POST", "/answer", body).then(function () {
      if (!skip) { state.mine += 1; $("stat-mine").textContent = state.mine; flash("labelled " + label); }
      return next();
    }).catch(function (e) { flash(e.message, true); }).then(function () { state.busy = false; });
  }

  function undo() {
    if (state.busy) return;
    state.busy = true;
    api("POST", "/undo", {}).then(function (view) {
      if (!view.item) { flash("nothing to undo"); return; }
      state.mine = Math.max(0, state.mine - 1); $("stat-mine").textContent = state.mine;
      render(view); flash("undone: " + view.undone);
    }).catch(function (e) { flash(e.message, true); }).then(function () { state.busy = false; });
  }

  function retrain() {
    api("POST", "/retrain", {}).then(function () { flash("retraining in the background"); }).catch(function (e) { flash(e.message, true); });
  }

  function drawCurve(curve) {
    var xs = curve.map(function (p) { return p.labels; }), ys = curve.map(function (p) { return p.accuracy; });
    var node = $("curve");
    node.setAttribute("data-points", String(curve.length));
    if (typeof uPlot === "undefined") return;
    if (!state.plot) {
      state.plot = new uPlot({ width: Math.max(node.clientWidth, 260), height: 200,
        scales: { x: { time: false }, y: { range: [0, 1] } }, series: [{ label: "labels" }, { label: "accuracy", stroke: "#2457c5", points: { show: true } }],
        axes: [{ label: "labels" }, {}] }, [xs, ys], node);
    } else {
      state.plot.setData([xs, ys]);
    }
  }

  function poll() {
    api("GET", "/status").then(function (s) {
      $("stat-labelled").textContent = s.labelled + " / " + s.items;
      $("stat-model").textContent = s.accuracy === null ? (s.retraining ? "training…" : "none yet")
        : (s.accuracy.toFixed(3) + " held-out, round " + s.rounds + (s.retraining ? " (training…)" : ""));
      if (s.error) $("stat-model").textContent += " — last round failed: " + s.error;
      $("stat-needed").textContent = s.labels_needed === null ? "not yet estimable" : (s.labels_needed === 0 ? "target " + cfg.target + " reached" : "about " + s.labels_needed);
      $("stat-disagree").textContent = s.disagreements;
      $("stat-kappa").textContent = s.agreement.cohen_kappa === null ? "-" : s.agreement.cohen_kappa.toFixed(2) + " on " + s.agreement.items + " items";
      drawCurve(s.curve);
      if (s.rounds !== state.rounds) {
        var first = state.rounds === -1;
        state.rounds = s.rounds;
        document.body.setAttribute("data-rounds", String(s.rounds));
        if (!first && state.item) {
          api("GET", "/items/" + state.item.id).then(function (v) {
            if (v.item && state.item && v.item.id === state.item.id) { state.item.suggestion = v.item.suggestion; state.item.confidence = v.item.confidence; showSuggestion(state.item); }
          });
        }
      }
    }).catch(function () { /* the next poll tries again */ });
  }

  document.addEventListener("keydown", function (ev) {
    var target = ev.target;
    if (target === $("comment")) {
      if (ev.key === "Enter" || ev.key === "Escape") { ev.preventDefault(); target.blur(); }
      return;
    }
    if (target && (target.tagName === "SELECT" || target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (/^[1-9]$/.test(ev.key)) {
      var cls = cfg.classes[Number(ev.key) - 1];
      if (cls !== undefined) { ev.preventDefault(); answer(cls, false); }
    } else if (ev.key === "ArrowLeft" || ev.key === "u" || ev.key === "Backspace") { ev.preventDefault(); undo(); }
    else if (ev.key === "ArrowRight" || ev.key === "s") { ev.preventDefault(); answer(null, true); }
    else if (ev.key === "c") { ev.preventDefault(); $("comment").focus(); }
    else if (ev.key === "r") { ev.preventDefault(); retrain(); }
  });
  document.querySelectorAll(".label-class").forEach(function (b) {
    b.addEventListener("click", function () { answer(b.getAttribute("data-class"), false); });
  });
  $("retrain").addEventListener("click", retrain);
  $("queue").addEventListener("change", function (ev) {
    state.queue = ev.target.value;
    var shared = ["random", "uncertainty", "diversity", "mix", "review"].indexOf(state.queue) >= 0;
    (shared ? api("POST", "/queue", { queue: state.queue }) : Promise.resolve()).then(next).catch(function (e) { flash(e.message, true); });
    ev.target.blur();
  });
  next();
  poll();
  setInterval(poll, 2000);
})();
