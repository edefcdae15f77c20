// The studio: a confirmation checkbox enables the Apply / Restore button it names (data-enables),
// unless problems block it (data-blocked). No inline script: the CSP forbids it.
(function () {
  function sync(box) {
    var button = document.getElementById(box.getAttribute("data-enables"));
    if (button && !button.hasAttribute("data-blocked")) button.disabled = !box.checked;
  }
  document.addEventListener("change", function (e) {
    if (e.target && e.target.matches && e.target.matches("input[data-enables]")) sync(e.target);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-enables]").forEach(sync);
  });
})();
