/* The invoice page: open a dialog the page asks for when it loads, without inline script
   (the CSP forbids it): the Send confirmation when the address ends in #send (links from
   lists say "review and send"), or the form a refused action came back to. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var page = document.querySelector(".invoice-page");
    var wanted = page ? page.getAttribute("data-open-dialog") : "";
    if (!wanted && window.location.hash === "#send") { wanted = "send"; }
    var dialog = wanted ? document.getElementById(wanted) : null;
    if (dialog && dialog.showModal && !dialog.open) { dialog.showModal(); }
  });
})();
