// The advisor's pages: the queue moves by keyboard (j/k or arrows, Enter opens, n/p pages) and refreshes
// itself when review items change (server-sent events, topic "review"); an item draws its consumption graph.
(function () {
  "use strict";
  var current = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr.queue-row")); }
  function select(index) {
    var all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (r, i) { r.classList.toggle("selected", i === current); });
    var link = all[current].querySelector("a");
    if (link) link.focus();
  }
  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("queue")) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    if (key === "j" || key === "ArrowDown") { select(current + 1); event.preventDefault(); }
    else if (key === "k" || key === "ArrowUp") { select(current - 1); event.preventDefault(); }
    else if (key === "n" || key === "p") {
      var link = document.querySelector('.pager a[rel="' + (key === "n" ? "next" : "prev") + '"]');
      if (link) window.location.href = link.href;
    }
    // Enter on a focused row's link follows it: the browser does that itself.
  });
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr.queue-row");
    if (row && event.target.tagName !== "A") window.location.href = row.dataset.href;
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("queue") && window.curbstopLive) {
      var pending = null;
      window.curbstopLive(function (topics) {
        if (topics.indexOf("review") < 0) return;
        clearTimeout(pending);
        pending = setTimeout(function () { document.body.dispatchEvent(new Event("review-changed")); }, 300);
      });
      document.body.addEventListener("htmx:afterSwap", function (event) {
        if (event.detail.target.id === "queue" && current >= 0) select(current);
      });
    }
    drawGraph();
  });

  function drawGraph() {
    var canvas = document.getElementById("consumption");
    var source = document.getElementById("graph-data");
    if (!canvas || !source || !window.Chart) return;
    var g = JSON.parse(source.textContent);
    var unit = g.unit || "";
    function series(points) { return points.map(function (p) { return { x: Date.parse(p.x), y: p.y, why: p.why }; }); }
    var datasets = [
      { label: "Actual reads", data: series(g.actual), borderColor: "#1f5f99", backgroundColor: "#1f5f99", pointStyle: "circle", pointRadius: 4, showLine: true, order: 2 },
      { label: "Estimated reads", data: series(g.estimated), borderColor: "#7a5d00", backgroundColor: "#ffffff", pointStyle: "rectRot", pointRadius: 6, showLine: false, order: 2 },
      { label: "Flagged reads", data: series(g.flagged), borderColor: "#b3261e", backgroundColor: "#b3261e", pointStyle: "triangle", pointRadius: 7, showLine: false, order: 2 },
      { label: "Reads in question", data: series(g.in_question), borderColor: "#000000", backgroundColor: "rgba(0,0,0,0)", pointStyle: "circle", pointRadius: 11, borderWidth: 2, showLine: false, order: 1 },
    ];
    if (g.norm_high.length) {
      datasets.push({ label: "Seasonal norm (low)", data: series(g.norm_low), borderColor: "rgba(46,125,50,0.5)", pointRadius: 0, showLine: true, fill: false, order: 3 });
      datasets.push({ label: "Seasonal norm band", data: series(g.norm_high), borderColor: "rgba(46,125,50,0.5)", backgroundColor: "rgba(46,125,50,0.12)", pointRadius: 0, showLine: true, fill: "-1", order: 3 });
    }
    var chart = new Chart(canvas, {
      type: "scatter",
      data: { datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { type: "linear", ticks: { callback: function (v) { return new Date(v).toLocaleDateString(undefined, { month: "short", year: "2-digit" }); } } },
          y: { beginAtZero: true, title: { display: true, text: "use (" + unit + ")" } },
        },
        plugins: {
          tooltip: { callbacks: { label: function (ctx) {
            var p = ctx.raw; var day = new Date(p.x).toLocaleDateString();
            return ctx.dataset.label + ": " + day + " " + p.y + " " + unit + (p.why ? " (" + p.why + ")" : "");
          } } },
        },
      },
    });
    window.curbstopGraph = chart;
    canvas.dataset.drawn = "yes";
  }
})();
