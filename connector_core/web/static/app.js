// connector-host operator pages: small progressive enhancements, no framework.
// Every page works without this file; with it:
// - a form with data-partial="#target" (the orders filters) fetches its GET
//   answer with the header X-Partial: 1 and swaps the target's content, and
//   links inside the target (sort, pages, status counts) do the same;
// - checkboxes with data-select-all="NAME" tick every box named NAME;
// - forms with data-confirm="..." ask first;
// - a broken item image becomes a placeholder;
// - a block with data-refresh="N" reloads the page every N seconds while runs are going.
(function () {
  "use strict";

  function swap(target, url, push) {
    target.classList.add("loading");
    fetch(url, { headers: { "X-Partial": "1", "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error(r.status); }
        return r.text();
      })
      .then(function (html) {
        target.innerHTML = html;
        target.classList.remove("loading");
        if (push) { history.pushState({ partial: url }, "", url); }
      })
      .catch(function () { window.location.href = url; });
  }

  function formUrl(form) {
    var params = new URLSearchParams(new FormData(form));
    var clean = new URLSearchParams();
    params.forEach(function (v, k) { if (v !== "") { clean.append(k, v); } });
    var query = clean.toString();
    return form.getAttribute("action") + (query ? "?" + query : "");
  }

  document.querySelectorAll("form[data-partial]").forEach(function (form) {
    var target = document.querySelector(form.getAttribute("data-partial"));
    if (!target) { return; }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      swap(target, formUrl(form), true);
    });
    form.querySelectorAll("select, input[type=date]").forEach(function (el) {
      el.addEventListener("change", function () { swap(target, formUrl(form), true); });
    });
    target.addEventListener("click", function (e) {
      var link = e.target.closest("a[href^='/orders?'], a[href='/orders']");
      if (!link || e.metaKey || e.ctrlKey) { return; }
      e.preventDefault();
      swap(target, link.getAttribute("href"), true);
    });
    window.addEventListener("popstate", function () { swap(target, window.location.href, false); });
  });

  document.addEventListener("change", function (e) {
    var box = e.target;
    if (box.matches && box.matches("input[data-select-all]")) {
      var name = box.getAttribute("data-select-all");
      document.querySelectorAll("input[type=checkbox][name='" + name + "']").forEach(function (b) {
        b.checked = box.checked;
      });
    }
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); }
  });

  document.querySelectorAll("img.thumb").forEach(function (img) {
    function broken() {
      var span = document.createElement("span");
      span.className = "thumb placeholder";
      span.setAttribute("aria-label", "image unavailable");
      img.replaceWith(span);
    }
    if (img.complete && img.naturalWidth === 0) { broken(); } else { img.addEventListener("error", broken); }
  });

  var refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    window.setTimeout(function () { window.location.reload(); }, 1000 * Number(refresh.getAttribute("data-refresh")));
  }
})();
