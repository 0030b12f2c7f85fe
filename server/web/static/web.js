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
  // A toast the server sent stays a few seconds, then clears itself.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "toast") {
      var box = event.detail.target;
      clearTimeout(box._timer);
      box._timer = setTimeout(function () { box.innerHTML = ""; }, 12000);
    }
  });
})();
