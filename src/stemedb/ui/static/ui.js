// StemeDB dashboard: the live change feed (EventSource). Progressive enhancement only:
// every page works without this file. No inline script anywhere (the CSP forbids it).
(function () {
  "use strict";
  var MAX_ROWS = 200;

  function text(tag, className, value) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    node.textContent = value;
    return node;
  }

  function describe(item) {
    var record = item.record || {};
    if (item.kind === "assertion" && record.subject !== undefined) {
      var value = record.object && record.object.value;
      if (typeof value !== "string") value = JSON.stringify(value);
      return record.subject + " · " + record.predicate + " = " + value;
    }
    if (record.source_hash) return item.kind + " " + record.source_hash.slice(0, 12) + "…";
    return item.kind;
  }

  function row(item) {
    var li = document.createElement("li");
    li.setAttribute("data-lsn", String(item.lsn));
    li.className = "fresh";
    li.appendChild(text("span", "lsn", "#" + item.lsn));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(text("span", "kind", item.kind));
    li.appendChild(document.createTextNode(" "));
    if (item.kind === "assertion") {
      var link = text("a", "", describe(item));
      link.href = "/ui/claims/" + encodeURIComponent(item.id);
      li.appendChild(link);
    } else {
      li.appendChild(document.createTextNode(describe(item)));
    }
    li.appendChild(document.createTextNode(" "));
    var when = new Date(item.committed_at * 1000).toISOString().replace(/\.\d+Z$/, "Z").replace("T", " ");
    li.appendChild(text("time", "", when));
    return li;
  }

  function startFeed(list) {
    if (!window.EventSource) return;
    var after = list.getAttribute("data-after") || "0";
    var url = list.getAttribute("data-stream") + "?after=" + encodeURIComponent(after);
    var source = new EventSource(url);
    var kinds = (list.getAttribute("data-kinds") || "assertion").split(" ");
    function onEvent(event) {
      var item;
      try { item = JSON.parse(event.data); } catch (e) { return; }
      if (list.querySelector('[data-lsn="' + item.lsn + '"]')) return;
      list.insertBefore(row(item), list.firstChild);
      while (list.children.length > MAX_ROWS) list.removeChild(list.lastChild);
    }
    kinds.forEach(function (kind) { source.addEventListener(kind, onEvent); });
    source.onerror = function () { list.setAttribute("data-state", "reconnecting"); };
    source.onopen = function () { list.setAttribute("data-state", "live"); };
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function ready() {
    var list = document.getElementById("feed");
    if (list) startFeed(list);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
