/* The portal's few behaviours, without inline scripts (the CSP forbids them):
   - announce and focus the outcome of an action (the #messages live region);
   - open and close <dialog> confirmations: a button with data-dialog="ID" opens
     <dialog id="ID">, a button with data-dialog-close closes the dialog it is in;
   - after an htmx swap, focus the first [data-focus] element the swap brought in. */
(function () {
  "use strict";
  function focusMessages() {
    var box = document.getElementById("messages");
    if (box && box.textContent.trim()) { box.focus(); }
  }
  document.addEventListener("DOMContentLoaded", focusMessages);
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog"));
      if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
      return;
    }
    var closer = event.target.closest("[data-dialog-close]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) { event.preventDefault(); open.close(); }
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var wanted = target && target.querySelector ? target.querySelector("[data-focus]") : null;
    if (wanted) { wanted.focus(); } else if (target && target.id === "messages") { focusMessages(); }
  });
})();
