/* Refreshes the figures every few seconds without reloading the page.
   No framework: fetch the server-rendered part and swap it in. */
(function () {
  "use strict";
  var box = document.getElementById("dashboard");
  var note = document.getElementById("refresh-note");
  if (!box || !window.fetch) { return; }
  var every = Math.max(2, parseInt(box.getAttribute("data-refresh"), 10) || 15) * 1000;
  var src = box.getAttribute("data-src");
  function show(message) {
    note.textContent = message;
    note.hidden = !message;
  }
  function refresh() {
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401) {
          window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
          return null;
        }
        if (!response.ok) {
          // The box answered but cannot give figures (a busy or damaged database):
          // say what it said, not that it cannot be reached.
          return response.text().then(function (page) {
            var found = new DOMParser().parseFromString(page, "text/html")
              .querySelector("[data-figure=error-detail]");
            show(found ? found.textContent + " The figures below may be out of date."
                       : "The box answered with an error (code " + response.status +
                         "): the figures below may be out of date.");
            return null;
          });
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        box.innerHTML = html;
        box.setAttribute("data-refreshed", String(Date.now()));
        show("");
      })
      .catch(function () {
        show("Cannot reach the box right now: the figures below may be out of date.");
      });
  }
  window.setInterval(refresh, every);
})();
