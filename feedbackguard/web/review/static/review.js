// Keyboard shortcuts for the review pages: j/k move, a approve, r reject, c claim.
// Everything also works without this file (plain forms); this only presses them.
(function () {
  "use strict";
  var current = -1;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("tr.row"));
  }

  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === current); });
    all[current].scrollIntoView({ block: "nearest" });
  }

  function submitForRow(action) {
    var all = rows();
    if (current < 0 || current >= all.length) { return false; }
    var form = document.getElementById("bulk-form");
    if (!form) { return false; }
    form.querySelectorAll("input[name=event_id]").forEach(function (box) {
      box.checked = box.value === all[current].getAttribute("data-id");
    });
    var button = form.querySelector("button[name=action][value=" + action + "]");
    if (button) { button.click(); return true; }
    return false;
  }

  function press(id) {
    var form = document.getElementById(id);
    if (form) { form.submit(); return true; }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) { return; }
    var onItem = document.getElementById("item-actions") !== null || document.getElementById("back") !== null;
    switch (event.key) {
      case "j":
        if (onItem) { var next = document.getElementById("next-item"); if (next) { window.location.href = next.href; } }
        else { select(current + 1); }
        break;
      case "k":
        if (onItem) { window.history.back(); } else { select(current - 1); }
        break;
      case "Enter":
        if (!onItem && current >= 0) { window.location.href = rows()[current].getAttribute("data-href"); }
        break;
      case "a":
        if (onItem) { press("approve-form"); } else { submitForRow("approve"); }
        break;
      case "r":
        if (onItem) { press("reject-form"); } else { submitForRow("reject"); }
        break;
      case "c":
        press("claim-form");
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (rows().length) { select(0); }
  });
})();
