// Keyboard for the review pages; everything also works without this file (plain
// forms and links), this only presses them.
//   cases queue: j/k move, Enter open, c claim the next case, u undo
//   case page:   r reject the case, a approve it (asks), s split (asks), x tick a
//                member, j/k move, n next case, u undo, Esc back to the queue
//   events list: j/k move, Enter open, a approve, r reject, c claim next
//   item page:   a approve, r reject, j next, k back, c claim next
(function () {
  "use strict";
  var current = -1;
  var pending = null;  // the action waiting for a confirmation (case page)

  function $(id) { return document.getElementById(id); }

  function all(selector) {
    return Array.prototype.slice.call(document.querySelectorAll(selector));
  }

  function rowSelector() {
    if ($("case-queue")) { return "tr.case-row"; }
    if ($("case-page")) { return "tr.member"; }
    return "tr.row";
  }

  function select(index) {
    var rows = all(rowSelector());
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("selected", i === current); });
    rows[current].scrollIntoView({ block: "nearest" });
  }

  function press(id) {
    var found = $(id);
    if (!found) { return false; }
    if (found.tagName === "FORM") { found.submit(); } else { found.click(); }
    return true;
  }

  function submitForRow(action) {  // events list: decide the selected row
    var rows = all("tr.row");
    var form = $("bulk-form");
    if (current < 0 || current >= rows.length || !form) { return false; }
    form.querySelectorAll("input[name=event_id]").forEach(function (box) {
      box.checked = box.value === rows[current].getAttribute("data-id");
    });
    var button = form.querySelector("button[name=action][value=" + action + "]");
    if (button) { button.click(); return true; }
    return false;
  }

  function ticked() {  // case page: events the ticked members hold, and the others
    var yes = 0, no = 0;
    all("tr.member").forEach(function (row) {
      var n = parseInt(row.getAttribute("data-events") || "1", 10);
      var box = row.querySelector("input[type=checkbox]");
      if (box && box.checked) { yes += n; } else { no += n; }
    });
    var total = parseInt(($("case-page") || document.body).getAttribute("data-events") || "0", 10);
    return { approve: yes, reject: Math.max(no, total - yes) };
  }

  function ask(action) {
    var panel = $("confirm-panel");
    if (!panel || !$(action + "-case")) { return false; }
    var n = ($("case-page") || document.body).getAttribute("data-events");
    var text;
    if (action === "approve") {
      text = "Approve all " + n + " events of this case? They reach the training data.";
    } else {
      var counts = ticked();
      text = "Split: approve " + counts.approve + " ticked events, reject the other " + counts.reject + "?";
    }
    $("confirm-text").textContent = text;
    panel.hidden = false;
    pending = action;
    return true;
  }

  function confirmPending() {
    var box = $("confirm-box");
    if (!pending || !box) { return false; }
    box.checked = true;
    var button = $(pending + "-case");
    pending = null;
    $("confirm-panel").hidden = true;
    button.click();
    return true;
  }

  function cancel() {
    if (pending) { pending = null; $("confirm-panel").hidden = true; return true; }
    var back = $("back");
    if (back) { window.location.href = back.href; return true; }
    return false;
  }

  function toggleTick() {
    var rows = all("tr.member");
    if (current < 0 || current >= rows.length) { return false; }
    var box = rows[current].querySelector("input[type=checkbox]");
    if (box) { box.checked = !box.checked; }
    return true;
  }

  function onCasePage(key) {
    if (pending) {
      if (key === "y" || key === "Enter") { return confirmPending(); }
      if (key === "Escape" || key === "n") { return cancel(); }
      return true;  // nothing else while a confirmation is open
    }
    switch (key) {
      case "r": return press("reject-case");
      case "a": return ask("approve");
      case "s": return ask("split");
      case "x": return toggleTick();
      case "j": select(current + 1); return true;
      case "k": select(current - 1); return true;
      case "n": return press("claim-case-form");
      case "u": return press("undo-form");
      case "Escape": return cancel();
      default: return false;
    }
  }

  function onCaseQueue(key) {
    switch (key) {
      case "j": select(current + 1); return true;
      case "k": select(current - 1); return true;
      case "Enter":
      case "o": {
        var rows = all("tr.case-row");
        if (current >= 0 && current < rows.length) { window.location.href = rows[current].getAttribute("data-href"); return true; }
        return false;
      }
      case "c": return press("claim-case-form");
      case "u": return press("undo-form");
      default: return false;
    }
  }

  function onEvents(key) {
    var onItem = $("item-actions") !== null || $("back") !== null;
    switch (key) {
      case "j":
        if (onItem) { var next = $("next-item"); if (next) { window.location.href = next.href; } }
        else { select(current + 1); }
        return true;
      case "k":
        if (onItem) { window.history.back(); } else { select(current - 1); }
        return true;
      case "Enter":
        if (!onItem && current >= 0) { window.location.href = all("tr.row")[current].getAttribute("data-href"); return true; }
        return false;
      case "a": return onItem ? press("approve-form") : submitForRow("approve");
      case "r": return onItem ? press("reject-form") : submitForRow("reject");
      case "c": return press("claim-form");
      case "u": return press("undo-button");
      default: return false;
    }
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      (target.tagName === "INPUT" && ["checkbox", "radio", "submit", "button"].indexOf(target.type) < 0));
    if (typing) {
      if (event.key === "Escape") { target.blur(); }
      return;
    }
    var handled;
    if ($("case-page")) { handled = onCasePage(event.key); }
    else if ($("case-queue")) { handled = onCaseQueue(event.key); }
    else { handled = onEvents(event.key); }
    if (handled) { event.preventDefault(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!$("case-page") && all(rowSelector()).length) { select(0); }
  });
})();
