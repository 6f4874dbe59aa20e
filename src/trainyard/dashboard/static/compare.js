/* trainyard dashboard: the compare page's charts, drawn with uPlot from the two versions' stored evaluations.
   Grouped bars with interval whiskers (metrics, fairness per group, feature importance) and reliability curves.
   Hover shows both versions' values; drag across a chart zooms, double-click resets. */
(function () {
  "use strict";
  var ty = window.trainyard;
  if (!ty || !window.uPlot) return;
  var $ = ty.$, $$ = ty.$$, fmt = ty.fmt, PALETTE = ty.PALETTE;

  function finite(v) { return typeof v === "number" && isFinite(v); }
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  /* Categories on x (0..n-1), one bar per version in each category, whiskers from low to high when known. */
  function barChart(box, spec, labels, xLabel) {
    var cats = spec.categories, n = cats.length;
    var all = [0];
    labels.forEach(function (l) {
      var s = spec.series[l] || {};
      ["value", "low", "high"].forEach(function (k) { (s[k] || []).forEach(function (v) { if (finite(v)) all.push(v); }); });
    });
    var lo = Math.min.apply(null, all), hi = Math.max.apply(null, all), pad = (hi - lo || 1) * 0.06;
    var longest = cats.reduce(function (m, c) { return Math.max(m, String(c).length); }, 0);
    var slanted = n > 4 && longest > 8;

    function configure(cfg) {
      cfg.scales = {
        x: { time: false, range: function (u, min, max) { return min === 0 && max === n - 1 ? [-0.5, n - 0.5] : [min, max]; } },
        y: { range: function () { return [lo < 0 ? lo - pad : 0, hi + pad]; } }
      };
      cfg.cursor.points = { show: false };
      cfg.series[0].value = function (u, v) { return v === null || v === undefined ? "-" : String(cats[Math.round(v)]); };
      cfg.axes = [
        { grid: { show: false }, rotate: slanted ? -30 : 0, size: slanted ? Math.min(110, 24 + longest * 3.8) : 40,
          splits: function (u) {
            var out = [];
            for (var i = Math.max(0, Math.ceil(u.scales.x.min)); i <= Math.min(n - 1, Math.floor(u.scales.x.max)); i++) out.push(i);
            return out;
          },
          values: function (u, splits) { return splits.map(function (i) { return cats[i] === undefined ? "" : String(cats[i]); }); } },
        { size: 60 }
      ];
      cfg.series.slice(1).forEach(function (s, k) {
        var data = spec.series[labels[k]] || {};
        s.paths = function () { return null; };
        s.points = { show: false };
        s.fill = alpha(PALETTE[k % PALETTE.length], 0.75);
        s.value = function (u, v, si, idx) {
          if (idx === null || idx === undefined) return fmt(v);
          var l = (data.low || [])[idx], h = (data.high || [])[idx];
          return fmt(v) + (finite(l) && finite(h) ? " [" + fmt(l) + ", " + fmt(h) + "]" : "");
        };
      });
      cfg.hooks.draw = [function (u) { drawBars(u, spec, labels, n); }];
    }
    var chart = new ty.Chart(box, spec.title, xLabel, labels, { configure: configure, height: 260 + (slanted ? 60 : 0) });
    var idx = cats.map(function (_, i) { return i; });
    chart.setData([idx].concat(labels.map(function (l) { return ((spec.series[l] || {}).value || []).slice(); })));
    return chart;
  }

  function drawBars(u, spec, labels, n) {
    var ctx = u.ctx, k = labels.length;
    var step = Math.abs(u.valToPos(1, "x", true) - u.valToPos(0, "x", true));
    var group = step * 0.7, width = group / k, zero = u.valToPos(Math.max(0, u.scales.y.min), "y", true);
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    labels.forEach(function (label, s) {
      var data = spec.series[label] || {}, color = PALETTE[s % PALETTE.length];
      for (var i = 0; i < n; i++) {
        var v = (data.value || [])[i];
        if (!finite(v)) continue;
        var left = u.valToPos(i, "x", true) - group / 2 + s * width, top = u.valToPos(v, "y", true);
        ctx.fillStyle = alpha(color, 0.75);
        ctx.fillRect(left + width * 0.05, Math.min(top, zero), width * 0.9, Math.max(1, Math.abs(zero - top)));
        var l = (data.low || [])[i], h = (data.high || [])[i];
        if (finite(l) && finite(h)) {
          var mid = left + width / 2, yl = u.valToPos(l, "y", true), yh = u.valToPos(h, "y", true), cap = Math.min(6, width * 0.25);
          ctx.strokeStyle = "#1c2430";
          ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
          ctx.beginPath();
          ctx.moveTo(mid, yl); ctx.lineTo(mid, yh);
          ctx.moveTo(mid - cap, yl); ctx.lineTo(mid + cap, yl);
          ctx.moveTo(mid - cap, yh); ctx.lineTo(mid + cap, yh);
          ctx.stroke();
        }
      }
    });
    ctx.restore();
  }

  /* Reliability: observed frequency against mean predicted probability per bin, for each version, and the diagonal. */
  function reliabilityChart(box, curves, labels) {
    var shown = labels.filter(function (l) { return curves[l] && curves[l].predicted.length; });
    var tables = [[[0, 1], [0, 1]]].concat(shown.map(function (l) { return [curves[l].predicted, curves[l].observed]; }));
    var data = uPlot.join(tables);
    var names = ["perfectly calibrated"].concat(shown.map(function (l) {
      return l + (finite(curves[l].ece) ? " (ECE " + fmt(curves[l].ece, 3) + ")" : "");
    }));
    function configure(cfg) {
      cfg.scales = { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } };
      cfg.axes = [{ label: "mean predicted probability" }, { size: 60, label: "observed frequency" }];
      cfg.series[1].stroke = "#9aa5b8";
      cfg.series[1].dash = [6, 4];
      cfg.series[1].width = 1;
      cfg.series[1].points = { show: false };
      cfg.series.slice(2).forEach(function (s, k) {
        var curve = curves[shown[k]], rowsAt = {};
        curve.predicted.forEach(function (p, i) { rowsAt[p] = curve.rows[i]; });
        s.stroke = PALETTE[k % PALETTE.length];
        s.points = { show: true, size: 7 };
        s.value = function (u, v, si, idx) {
          if (v === null || v === undefined || idx === null || idx === undefined) return "-";
          var rows = rowsAt[u.data[0][idx]];
          return fmt(v, 3) + (rows !== undefined ? " (" + rows + " rows)" : "");
        };
      });
    }
    var chart = new ty.Chart(box, "reliability curve (" + (curves[shown[0]] || {}).kind + ")", "predicted", names,
                             { configure: configure, height: 300 });
    chart.setData(data);
    return chart;
  }

  function start() {
    var block = $("#compare-data");
    if (!block) return;
    var d = JSON.parse(block.textContent), labels = d.labels;
    $$(".compare-chart").forEach(function (box) {
      var source = box.getAttribute("data-source"), i = parseInt(box.getAttribute("data-index") || "0", 10);
      if (source === "metrics") barChart(box, d.metrics[i], labels, "metric");
      else if (source === "fairness") barChart(box, d.fairness[parseInt(box.getAttribute("data-column"), 10)].charts[i], labels, "group");
      else if (source === "importance") barChart(box, d.importance, labels, "feature");
      else if (source === "calibration") reliabilityChart(box, d.calibration, labels);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
