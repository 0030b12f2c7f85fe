// The dispatcher's board: the map, drag and drop on the timeline, the order drawer, live refresh.
// Every change is a POST the server checks (skills, windows, versions) and answers in #toast.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board) return;
  var day = board.dataset.day;
  var canEdit = board.dataset.canEdit === "yes";

  // ---- map ------------------------------------------------------------------------------------------
  var map = null;
  var layer = null;
  var fitted = false;
  var STATUS_FILL = {
    completed: "#5f6b73", unable_to_complete: "#5f6b73", en_route: "#ffd400", on_site: "#ffd400",
    dispatched: "#ffffff", assigned: "#ffffff", draft: "#ffffff",
  };
  function initMap() {
    if (!window.L || !document.getElementById("map")) return;
    map = L.map("map", { zoomSnap: 0.25, attributionControl: true });
    var tiles = board.dataset.tileUrl;
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19, attribution: board.dataset.tileAttribution || "" }).addTo(map);
    } else {
      fetch("/board/streets.json", { credentials: "same-origin" }).then(function (r) { return r.json(); })
        .then(function (data) {
          var streets = L.layerGroup();
          data.streets.forEach(function (line) {
            L.polyline(line, { color: "#c9ced3", weight: 5, opacity: 1, interactive: false }).addTo(streets);
          });
          streets.addTo(map);
          streets.eachLayer(function (l) { l.bringToBack(); });
          document.getElementById("map").dataset.streets = String(data.streets.length);
        });
    }
    layer = L.layerGroup().addTo(map);
    refreshMap();
  }
  function refreshMap() {
    if (!map) return;
    fetch("/board/map.json?day=" + encodeURIComponent(day), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        layer.clearLayers();
        data.routes.forEach(function (route) {
          var line = route.stops.map(function (s) { return [s.lat, s.lon]; });
          L.polyline(line, { color: route.colour, weight: 3, opacity: 0.85 }).addTo(layer)
            .bindTooltip(route.technician);
          route.stops.forEach(function (s) {
            L.circleMarker([s.lat, s.lon], {
              radius: 6, color: route.colour, weight: 3, fillColor: STATUS_FILL[s.status] || "#ffffff", fillOpacity: 1,
            }).addTo(layer).bindTooltip(route.technician + " · " + s.label + " · " + s.status.replace(/_/g, " "))
              .on("click", function () { openDrawer(s.id); });
          });
        });
        data.unassigned.forEach(function (u) {
          L.circleMarker([u.lat, u.lon], { radius: 5, color: "#6b2d00", weight: 2, dashArray: "2", fillColor: "#ffb380", fillOpacity: 0.9 })
            .addTo(layer).bindTooltip(u.label).on("click", function () { openDrawer(u.id); });
        });
        data.crew.forEach(function (c) {
          L.marker([c.lat, c.lon], {
            icon: L.divIcon({ className: "crew-icon", html: '<span style="background:' + c.colour + '">' + c.technician + "</span>", iconSize: [34, 18] }),
            keyboard: false,
          }).addTo(layer).bindTooltip(c.technician + ": " + c.state);
        });
        if (!fitted) {
          map.fitBounds(data.bounds, { padding: [16, 16] });
          fitted = true;
        }
        document.getElementById("map").dataset.routes = String(data.routes.length);
      });
  }

  // ---- drawer ---------------------------------------------------------------------------------------
  var drawer = document.getElementById("drawer");
  var opener = null;
  function openDrawer(orderId) {
    htmx.ajax("GET", "/board/orders/" + orderId, { target: "#drawer", swap: "innerHTML" });
  }
  function closeDrawer() {
    drawer.hidden = true;
    drawer.innerHTML = "";
    if (opener && document.body.contains(opener)) opener.focus();
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.target === drawer) opener = document.activeElement;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target === drawer && drawer.innerHTML.trim()) {
      drawer.hidden = false;
      drawer.focus();
    }
  });
  drawer.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-drawer]")) closeDrawer();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !drawer.hidden) closeDrawer();
  });

  // ---- drag and drop --------------------------------------------------------------------------------
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function timeAt(lane, clientX, offsetMin) {
    var tl = lane.closest(".timeline");
    var rect = lane.getBoundingClientRect();
    var fraction = Math.min(1, Math.max(0, (clientX - rect.left) / rect.width));
    var minutes = Number(tl.dataset.startMin) + fraction * Number(tl.dataset.spanMin) - offsetMin;
    minutes = Math.max(0, Math.min(23 * 60 + 55, Math.round(minutes / 5) * 5));
    return pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
  }
  var dragging = null;
  document.addEventListener("dragstart", function (event) {
    var item = event.target.closest && event.target.closest(".stop[draggable=true], .work-row[draggable=true]");
    if (!item || !canEdit) return;
    var grabMin = 0;
    if (item.classList.contains("stop")) {
      // Keep the point grabbed under the pointer: the drop time is the bar's start, not the pointer's.
      var rect = item.getBoundingClientRect();
      var lane = item.closest(".tl-lane").getBoundingClientRect();
      var tl = item.closest(".timeline");
      grabMin = (event.clientX - rect.left) / lane.width * Number(tl.dataset.spanMin);
    }
    dragging = { order: item.dataset.order, version: item.dataset.version, fromStop: item.classList.contains("stop"), grabMin: grabMin };
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", item.dataset.order);
  });
  document.addEventListener("dragover", function (event) {
    if (!dragging) return;
    var lane = event.target.closest && event.target.closest(".tl-lane.dropzone");
    var list = event.target.closest && event.target.closest(".unassign-zone");
    if (lane || (list && dragging.fromStop)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      document.querySelectorAll(".drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
      (lane || list).classList.add("drop-target");
    }
  });
  document.addEventListener("dragend", function () {
    dragging = null;
    document.querySelectorAll(".drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
  });
  document.addEventListener("drop", function (event) {
    if (!dragging) return;
    var lane = event.target.closest && event.target.closest(".tl-lane.dropzone");
    var list = event.target.closest && event.target.closest(".unassign-zone");
    var d = dragging;
    dragging = null;
    document.querySelectorAll(".drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
    if (lane) {
      event.preventDefault();
      htmx.ajax("POST", "/board/orders/" + d.order + "/move", {
        target: "#toast", swap: "innerHTML",
        values: { technician_id: lane.dataset.tech, version: d.version, day: day, arrive: timeAt(lane, event.clientX, d.grabMin) },
      });
    } else if (list && d.fromStop) {
      event.preventDefault();
      htmx.ajax("POST", "/board/orders/" + d.order + "/unassign", { target: "#toast", swap: "innerHTML", values: { version: d.version } });
    }
  });

  // ---- live refresh ---------------------------------------------------------------------------------
  var pending = null;
  function refreshAll() {
    htmx.trigger(document.body, "board-changed");
  }
  document.body.addEventListener("board-changed", function () {
    refreshMap();
    var filters = document.querySelector("#work form.filters");
    if (filters) htmx.trigger(filters, "submit");
    var open = drawer.querySelector(".drawer-inner");
    if (!drawer.hidden && open) {
      htmx.ajax("GET", "/board/orders/" + open.dataset.order, { target: "#drawer", swap: "innerHTML" });
    }
  });
  if (window.curbstopLive) {
    window.curbstopLive(function (topics) {
      if (!topics.some(function (t) { return ["orders", "plans", "field", "crew"].indexOf(t) >= 0; })) return;
      clearTimeout(pending);
      pending = setTimeout(refreshAll, 300);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initMap);
  else initMap();
})();
