// Shared by every office page: htmx sends the CSRF token on every request it makes, and answers the
// server refuses (409 conflict, 412 stale, 422 invalid, 403) are shown where the page asked, not dropped.
(function () {
  "use strict";
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) {
      htmx.config.responseHandling = [
        { code: "204", swap: false },
        { code: "[23]..", swap: true },
        { code: "(403|409|412|422|428)", swap: true, error: false },
        { code: "[45]..", swap: false, error: true },
      ];
    }
  });
  // Live updates: one EventSource per page; listeners get the topics of each committed change.
  var source = null;
  var listeners = [];
  window.curbstopLive = function (listener) {
    listeners.push(listener);
    if (source === null && window.EventSource) {
      source = new EventSource("/events");
      source.addEventListener("changed", function (event) {
        var message = JSON.parse(event.data);
        listeners.forEach(function (fn) { fn(message.topics || []); });
      });
      source.addEventListener("open", function () { document.body.dataset.live = "yes"; });
      source.addEventListener("error", function () { document.body.dataset.live = "reconnecting"; });
    }
  };
  // An API-style JSON error (a form field the server could not read) is shown as its sentence, not as JSON.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if ((xhr.getResponseHeader("Content-Type") || "").indexOf("application/json") !== 0) return;
    var message = "the server refused this (" + xhr.status + ")";
    try { message = JSON.parse(xhr.responseText).error.message || message; } catch (e) { /* keep the status */ }
    var p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = message;
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    event.detail.target = document.getElementById("toast");
    event.detail.serverResponse = p.outerHTML;
  });
  // A toast the server sent stays a few seconds, then clears itself.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "toast") {
      var box = event.detail.target;
      clearTimeout(box._timer);
      box._timer = setTimeout(function () { box.innerHTML = ""; }, 12000);
    }
  });
})();
