// The journey page's buttons: publish, pause, resume, archive through the API (POST
// /v1/journeys/{name}/{action}, with the session's CSRF token added by perennial.fetchJson),
// then the page is loaded again so every count and status shown is the server's. Only
// operators and admins get the buttons; the API checks the role again.
(function () {
  "use strict";

  var root = document.querySelector('[data-testid="journey-actions"]');
  if (!root) { return; }
  var api = window.perennial.fetchJson;
  var error = root.querySelector('[data-testid="journey-action-error"]');
  var buttons = Array.prototype.slice.call(root.querySelectorAll("button[data-action]"));

  function busy(state) {
    buttons.forEach(function (button) { button.disabled = state; });
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      var question = button.dataset.confirm;
      if (question && !window.confirm(question)) { return; }
      busy(true);
      error.hidden = true;
      var url = "/v1/journeys/" + encodeURIComponent(root.dataset.journey) + "/" + button.dataset.action;
      api(url, { method: "POST" }).then(function (answer) {
        root.dataset.status = answer.status;
        window.location.reload();
      }).catch(function (problem) {
        error.textContent = problem.message;
        error.hidden = false;
        busy(false);
      });
    });
  });
})();
