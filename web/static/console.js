/* O2C Hub console: small progressive enhancements; every page works without them.
 * - <time datetime="…Z"> elements are shown in the viewer's time zone, with a relative time
 *   ("5 min ago"); the UTC time stays in the title for support notes.
 * - [data-progress-url] regions poll a JSON progress endpoint until the work is done.
 */
(function () {
  "use strict";
  var units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
               ["hour", 3600], ["minute", 60], ["second", 1]];
  var relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, {numeric: "auto"}) : null;
  var absolute = window.Intl ? new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"}) : null;

  function ago(date) {
    var seconds = Math.round((date.getTime() - Date.now()) / 1000);
    for (var i = 0; i < units.length; i++) {
      var size = units[i][1];
      if (Math.abs(seconds) >= size || size === 1) {
        return relative ? relative.format(Math.round(seconds / size), units[i][0]) : "";
      }
    }
    return "";
  }

  function localTimes(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i], date = new Date(node.getAttribute("datetime"));
      if (isNaN(date.getTime())) continue;
      if (!node.dataset.utc) node.dataset.utc = node.textContent;
      node.title = node.dataset.utc;
      var when = absolute ? absolute.format(date) : date.toString();
      var rel = ago(date);
      node.textContent = rel ? when + " (" + rel + ")" : when;
    }
  }

  function poll(region) {
    var url = region.getAttribute("data-progress-url");
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        ["done", "failed", "remaining", "total"].forEach(function (key) {
          var cell = region.querySelector("[data-count='" + key + "']");
          if (cell) cell.textContent = data[key];
        });
        var bar = region.querySelector("progress");
        if (bar) { bar.max = data.total || 1; bar.value = data.done + data.failed; }
        var phase = region.querySelector("[data-phase]");
        if (phase && data.status) phase.textContent = data.status;
        var state = region.querySelector("[data-state]");
        if (state) state.textContent = data.finished ? "Finished." : "Working…";
        if (!data.finished) window.setTimeout(function () { poll(region); }, 1500);
      })
      .catch(function () { window.setTimeout(function () { poll(region); }, 5000); });
  }

  // wide tables scroll in place (not the page), and their scroll area is reachable by keyboard
  function scrollAreas() {
    var tables = document.querySelectorAll("main table");
    for (var i = 0; i < tables.length; i++) {
      var table = tables[i], parent = table.parentElement;
      if (parent && parent.classList.contains("scroll")) continue;
      var area = document.createElement("div");
      area.className = "scroll";
      area.tabIndex = 0;
      area.setAttribute("role", "region");
      var caption = table.querySelector("caption"), heading = null, node = table.previousElementSibling;
      while (node && !heading) { if (/^H[1-6]$/.test(node.tagName)) heading = node; node = node.previousElementSibling; }
      area.setAttribute("aria-label", (caption || heading || {textContent: "Table"}).textContent.trim().slice(0, 80) || "Table");
      parent.insertBefore(area, table);
      area.appendChild(table);
    }
  }

  // a code block that scrolls is reachable by keyboard too
  function focusablePre() {
    var blocks = document.querySelectorAll("main pre");
    for (var i = 0; i < blocks.length; i++) {
      if (!blocks[i].hasAttribute("tabindex")) blocks[i].tabIndex = 0;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    scrollAreas();
    focusablePre();
    localTimes(document);
    window.setInterval(function () { localTimes(document); }, 60000);
    var regions = document.querySelectorAll("[data-progress-url]");
    for (var i = 0; i < regions.length; i++) poll(regions[i]);
  });
})();
