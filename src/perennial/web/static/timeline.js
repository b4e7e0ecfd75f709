// The customer 360's "more" link: fetch the next timeline items (?part=timeline)
// and append them in place instead of opening a new page. Without JavaScript the
// link still works (it opens the page from that cursor). The fetched HTML is the
// server's own escaped template output; scripts in it would not run.
(function () {
  "use strict";

  function more(link) {
    var url = new URL(link.href, window.location.href);
    url.hash = "";
    url.searchParams.set("part", "timeline");
    link.setAttribute("aria-busy", "true");
    return fetch(url.toString(), {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    }).then(function (response) {
      if (!response.ok || response.redirected) {
        window.location.assign(link.href);
        return;
      }
      return response.text().then(function (html) {
        var fragment = new DOMParser().parseFromString(html, "text/html");
        var list = document.querySelector("[data-timeline-list]");
        var items = fragment.querySelectorAll("[data-timeline-item]");
        for (var i = 0; i < items.length; i += 1) {
          list.appendChild(document.importNode(items[i], true));
        }
        var pager = document.querySelector("[data-timeline-pager]");
        var next = fragment.querySelector("[data-timeline-more]");
        pager.replaceChildren();
        if (next) {
          pager.appendChild(document.importNode(next, true));
        }
      });
    });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-timeline-more]") : null;
    if (!link || !document.querySelector("[data-timeline-list]")) {
      return;
    }
    event.preventDefault();
    more(link);
  });
})();
