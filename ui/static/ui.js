/* Small behaviours htmx does not cover: link pickers, child rows, live form state, dialogs,
   confirmations and "select all". No inline scripts; everything is delegated from document. */
(function () {
  "use strict";

  // Remember which input changed, so the live preview can validate just that field.
  function noteChange(e) {
    var t = e.target;
    if (!t || !t.form || !t.name || t.name.charAt(0) === "_" && t.name.indexOf("_lk_") !== 0) return;
    var marker = t.form.querySelector("input[name=_changed]");
    // while a search is typed into a link picker there is nothing to check yet: the pick tells
    if (marker) marker.value = t.name.indexOf("_lk_") === 0 ? (e.type === "input" ? "" : t.name.slice(4)) : t.name;
  }
  document.addEventListener("change", noteChange, true);
  document.addEventListener("input", noteChange, true);

  document.addEventListener("click", function (e) {
    var t = e.target;
    // a link picker's choice
    var pick = t.closest && t.closest("[data-pick-id]");
    if (pick) {
      e.preventDefault();
      var box = pick.closest("[data-link-picker]");
      var hidden = box.querySelector("[data-link-value]");
      var text = box.querySelector("[data-link-text]");
      hidden.value = pick.getAttribute("data-pick-id");
      text.value = pick.getAttribute("data-pick-title");
      text.setAttribute("data-picked", text.value);
      box.querySelector(".link-options").innerHTML = "";
      text.setAttribute("aria-expanded", "false");
      var marker = hidden.form && hidden.form.querySelector("input[name=_changed]");
      if (marker) marker.value = hidden.name;
      hidden.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    // remove a child-table row
    var remove = t.closest && t.closest("[data-remove-row]");
    if (remove) {
      e.preventDefault();
      var form = remove.closest("form");
      remove.closest("tr").remove();
      if (form) form.dispatchEvent(new Event("rowsChanged", { bubbles: true }));
      return;
    }
    // confirmations
    var confirmable = t.closest && t.closest("[data-confirm]");
    if (confirmable && !window.confirm(confirmable.getAttribute("data-confirm"))) {
      e.preventDefault();
      e.stopImmediatePropagation();
      return;
    }
    if (t.closest && t.closest("[data-close-dialog]")) {
      e.preventDefault();
      closeDialog();
      return;
    }
    if (!(t.closest && t.closest("[data-link-picker]"))) {  // a click elsewhere closes open pickers
      document.querySelectorAll(".link-options").forEach(function (ul) { ul.innerHTML = ""; });
    }
    if (t.closest && t.closest("[data-open-dialog]")) {
      var d = document.getElementById("dialog");
      if (d && !d.open) d.showModal();
    }
  }, true);

  // a link picker whose text was cleared has no value any more
  document.addEventListener("input", function (e) {
    var t = e.target;
    if (t.matches && t.matches("[data-link-text]")) t.removeAttribute("data-picked");
    if (t.matches && t.matches("[data-link-text]") && t.value.trim() === "") {
      var hidden = t.closest("[data-link-picker]").querySelector("[data-link-value]");
      if (hidden.value) { hidden.value = ""; hidden.dispatchEvent(new Event("change", { bubbles: true })); }
    }
  });

  // keyboard in a link picker: arrows move through the choices, Escape closes them
  document.addEventListener("keydown", function (e) {
    var box = e.target.closest && e.target.closest("[data-link-picker]");
    if (!box) return;
    var picks = Array.prototype.slice.call(box.querySelectorAll("[data-pick-id]"));
    var text = box.querySelector("[data-link-text]");
    if (e.key === "Escape") {
      box.querySelector(".link-options").innerHTML = "";
      text.focus();
      return;
    }
    if (!picks.length || (e.key !== "ArrowDown" && e.key !== "ArrowUp")) return;
    e.preventDefault();
    var i = picks.indexOf(document.activeElement);
    i = e.key === "ArrowDown" ? Math.min(i + 1, picks.length - 1) : i - 1;
    if (i < 0) text.focus(); else picks[i].focus();
  });

  // select all rows of a list (data-select-all="<checkbox name>", default ids)
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("[data-select-all]")) {
      var name = e.target.getAttribute("data-select-all") || "ids";
      document.querySelectorAll("input[name=" + CSS.escape(name) + "]").forEach(function (c) {
        c.checked = e.target.checked;
      });
    }
  });

  // A live search box asks while typing; its "change" (on blur) would ask again: keep it from the form.
  // (Done here rather than as an hx-trigger filter: the CSP allows no eval, so htmx runs without it.)
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("[data-live-search]")) e.stopPropagation();
  }, true);

  // An empty link picker shows its first choices when it gets the focus.
  document.addEventListener("focusin", function (e) {
    var t = e.target;
    if (t.matches && t.matches("[data-link-text]") && t.value === "") t.dispatchEvent(new Event("lookupFocus"));
  });

  // A date field is a text input that always reads YYYY-MM-DD (the browser's own date input follows
  // its locale, e.g. mm/dd/yyyy); the calendar button borrows a native picker and writes back.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest("[data-date-pick]");
    if (!btn) return;
    e.preventDefault();
    var box = btn.closest(".date-input");
    var text = box.querySelector("[data-date]");
    var withTime = text.getAttribute("data-date") === "datetime";
    var native = box.querySelector(".date-native");
    if (!native) {
      native = document.createElement("input");
      native.type = withTime ? "datetime-local" : "date";
      native.className = "date-native";
      native.tabIndex = -1;
      native.setAttribute("aria-hidden", "true");
      native.addEventListener("change", function () {
        if (!native.value) return;
        text.value = native.value.replace("T", " ");
        text.dispatchEvent(new Event("input", { bubbles: true }));
        text.dispatchEvent(new Event("change", { bubbles: true }));
        text.focus();
      });
      box.appendChild(native);
    }
    var v = text.value.trim().replace(" ", "T");
    native.value = /^\d{4}-\d{2}-\d{2}/.test(v) ? v : "";
    try { native.showPicker(); } catch (err) { native.focus(); native.click(); }
  });

  // Colours from the config (badges, stages) arrive as data-color: the CSP forbids style attributes.
  function paint(root) {
    if (!root || !root.querySelectorAll) return;
    var els = Array.prototype.slice.call(root.querySelectorAll("[data-color]"));
    if (root.matches && root.matches("[data-color]")) els.push(root);
    els.forEach(function (el) {
      el.style.setProperty(el.classList.contains("stage") ? "--stage" : "--badge", el.getAttribute("data-color"));
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { paint(document); });
  } else {
    paint(document);
  }
  document.addEventListener("htmx:load", function (e) { paint(e.detail && e.detail.elt); });

  function closeDialog() {
    var d = document.getElementById("dialog");
    if (d && d.open) d.close();
    var body = document.getElementById("dialog-body");
    if (body) body.innerHTML = "";
  }

  // apply what the live preview says: hidden sections and fields, required fields
  function applyState(el) {
    var form = el.closest("form") || document;
    var split = function (s) { return (s || "").split(",").filter(Boolean); };
    var hidden = split(el.getAttribute("data-hidden"));
    var hiddenSections = split(el.getAttribute("data-hidden-sections"));
    var required = split(el.getAttribute("data-required"));
    form.querySelectorAll("[data-section]").forEach(function (s) {
      s.hidden = hiddenSections.indexOf(s.getAttribute("data-section")) >= 0;
    });
    form.querySelectorAll("[data-field]").forEach(function (w) {
      var name = w.getAttribute("data-field");
      w.hidden = hidden.indexOf(name) >= 0;
      var req = required.indexOf(name) >= 0;
      w.classList.toggle("is-required", req);
      var input = w.querySelector("#" + CSS.escape(name));
      if (input && input.type !== "checkbox" && input.type !== "hidden") {
        input.required = req;
        input.setAttribute("aria-required", req ? "true" : "false");
      }
    });
  }

  // a lookup answer that arrives after a choice was made does not reopen the list
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail.target;
    if (!target || !target.classList || !target.classList.contains("link-options")) return;
    var text = target.closest("[data-link-picker]").querySelector("[data-link-text]");
    if (text.getAttribute("data-picked") === text.value) e.detail.shouldSwap = false;
  });

  document.addEventListener("htmx:oobAfterSwap", function (e) {
    // the event fires on the new element; detail.target is the one it replaced (stale content)
    var el = e.target && e.target.id ? e.target : e.detail && e.detail.target;
    if (el && el.id === "form-state") applyState(el);
    if (el && el.id && el.id.indexOf("err-") === 0) {
      var input = document.getElementById(el.id.slice(4));
      if (input) input.setAttribute("aria-invalid", el.textContent.trim() ? "true" : "false");
    }
  });

  // a record saved from a dialog: close it and say so where the page's other messages appear
  document.addEventListener("recordSaved", function (e) {
    closeDialog();
    var text = e.detail && e.detail.message, box = document.getElementById("flashes");
    if (!text || !box) return;
    var p = document.createElement("p");
    p.className = "flash flash-success";
    p.setAttribute("role", "status");
    p.textContent = text;
    box.innerHTML = "";
    box.appendChild(p);
  });

  // values a picked record brings along (a link's `fetch`): filled where the field is empty or still
  // holds what an earlier fetch put there, so nothing the user typed is overwritten
  document.addEventListener("linkFetched", function (e) {
    var form = e.target && e.target.closest ? e.target.closest("form") : null;
    var vals = (e.detail && e.detail.values) || {};
    if (!form) return;
    Object.keys(vals).forEach(function (name) {
      var v = vals[name], box, sel = "[name=\"" + CSS.escape(name) + "\"]";
      var input = form.querySelector("input[type=checkbox]" + sel) || form.querySelector(sel);
      if (!input) return;
      var check = input.type === "checkbox", now = check ? String(input.checked) : input.value;
      var mark = input.getAttribute("data-fetched");
      if (check ? mark !== null && mark !== now : now !== "" && mark !== now) return;  // the user's own value
      if (check) input.checked = v.value === "true"; else input.value = v.value;
      input.setAttribute("data-fetched", check ? String(input.checked) : input.value);
      box = input.matches("[data-link-value]") ? input.closest("[data-link-picker]") : null;
      if (box && v.title !== undefined) {
        var text = box.querySelector("[data-link-text]");
        text.value = v.title;
        text.setAttribute("data-picked", v.title);
        text.setAttribute("aria-invalid", "false");
      }
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
  });

  // after a failed save, bring the error summary into view
  document.addEventListener("htmx:afterSwap", function (e) {
    var summary = e.detail.target && e.detail.target.querySelector && e.detail.target.querySelector(".error-summary");
    if (summary) summary.focus();
  });
})();
