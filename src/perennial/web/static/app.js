// Shared by every page (no inline scripts: the Content-Security-Policy forbids them).
// perennial.fetchJson calls the API with the session cookie and, for changes, the
// session's CSRF token from <meta name="csrf-token">.
(function () {
  "use strict";

  var meta = document.querySelector('meta[name="csrf-token"]');
  var unsafe = { POST: true, PUT: true, PATCH: true, DELETE: true };

  function fetchJson(url, options) {
    var settings = Object.assign({ method: "GET", credentials: "same-origin" }, options || {});
    var headers = Object.assign({ Accept: "application/json" }, settings.headers || {});
    if (unsafe[settings.method.toUpperCase()] && meta) {
      headers["X-CSRF-Token"] = meta.content;
    }
    if (settings.body !== undefined && typeof settings.body !== "string") {
      headers["Content-Type"] = "application/json";
      settings.body = JSON.stringify(settings.body);
    }
    settings.headers = headers;
    return fetch(url, settings).then(function (response) {
      if (response.status === 401) {
        window.location.assign("/login?next=" + encodeURIComponent(
          window.location.pathname + window.location.search));
      }
      return response.json().then(function (body) {
        if (!response.ok) {
          var error = new Error(body.error ? body.error.message : response.statusText);
          error.status = response.status;
          error.body = body;
          throw error;
        }
        return body;
      });
    });
  }

  window.perennial = { fetchJson: fetchJson, language: document.documentElement.lang };
})();
