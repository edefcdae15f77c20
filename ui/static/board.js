/* The kanban board (/e/<entity>/board): SortableJS moves cards between columns; each drop asks the
   server to run the transition to that column. A refused move puts the card back where it was and
   shows why; a move that needs a comment asks for one. A focused card moves with the keyboard too:
   ← and → send it to the neighbouring column through the same request. No inline script (the CSP
   forbids it). */
(function () {
  "use strict";

  function say(text, ok) {
    var m = document.getElementById("board-message");
    if (!m) return;
    m.textContent = text || "";
    m.className = "flash " + (ok ? "flash-success" : "flash-error");
    m.setAttribute("role", ok ? "status" : "alert");
    m.hidden = !text;
  }

  function snapBack(evt) {
    var from = evt.from;
    from.insertBefore(evt.item, from.children[evt.oldIndex] || null);
  }

  function refresh(board, focusId) {
    if (window.htmx) {
      var done = window.htmx.ajax("GET", board.getAttribute("data-refresh-url"), { target: "#board", swap: "outerHTML" });
      if (focusId && done && done.then) {
        done.then(function () {
          var again = document.querySelector('#board .board-card[data-id="' + focusId + '"]');
          if (again) again.focus();
        });
      }
      return done;
    }
    window.location.reload();
  }

  function move(board, evt, comment) {
    var card = evt.item;
    var body = new URLSearchParams();
    body.set("rid", card.getAttribute("data-id"));
    body.set("to", evt.to.getAttribute("data-column"));
    body.set("version", card.getAttribute("data-version"));
    if (comment) body.set("comment", comment);
    board.classList.add("board-busy");
    fetch(board.getAttribute("data-move-url"), {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRFToken": board.getAttribute("data-csrf"), "Accept": "application/json" }
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false }; });
    }).then(function (res) {
      board.classList.remove("board-busy");
      if (!res.ok && res.need_comment && !comment) {
        var given = window.prompt(res.message || "");
        if (given && given.trim()) return move(board, evt, given.trim());
      }
      if (!res.ok) {
        snapBack(evt);
        say(res.message || board.getAttribute("data-failed"), false);
        return;
      }
      say(res.message, true);
      refresh(board, evt.keyboard ? card.getAttribute("data-id") : null);
    }).catch(function () {
      board.classList.remove("board-busy");
      snapBack(evt);
      say(board.getAttribute("data-failed"), false);
    });
  }

  // ← / → on a focused card: the same move as a drop on the neighbouring column.
  function onKey(board, e) {
    var card = e.target.closest && e.target.closest(".board-card");
    if (!card || e.target !== card || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || board.classList.contains("board-busy")) return;
    var cols = Array.prototype.slice.call(board.querySelectorAll("[data-column]"));
    var from = card.parentNode, at = cols.indexOf(from);
    var to = cols[at + (e.key === "ArrowRight" ? 1 : -1)];
    e.preventDefault();
    if (!to) return;
    var oldIndex = Array.prototype.indexOf.call(from.children, card);
    to.insertBefore(card, to.firstChild);
    card.focus();
    move(board, { item: card, from: from, to: to, oldIndex: oldIndex, keyboard: true });
  }

  function init(root) {
    var board = root && root.id === "board" ? root : root && root.querySelector && root.querySelector("#board");
    if (!board || board.getAttribute("data-ready") || typeof window.Sortable === "undefined") return;
    board.setAttribute("data-ready", "1");
    board.addEventListener("keydown", function (e) { onKey(board, e); });
    board.querySelectorAll("[data-column]").forEach(function (col) {
      window.Sortable.create(col, {
        group: "board", animation: 120, draggable: ".board-card", ghostClass: "board-ghost",
        onEnd: function (evt) { if (evt.from !== evt.to) move(board, evt); }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
  document.addEventListener("htmx:load", function (e) { init(e.detail && e.detail.elt); });
})();
