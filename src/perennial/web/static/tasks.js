// The tasks page: claim a task and close it with an outcome, through the API
// (POST /v1/tasks/{id}/claim and /close) with the session's CSRF token (app.js).
// No innerHTML: titles and notes are user data and only ever become text.
(function () {
  "use strict";

  var api = window.perennial.fetchJson;

  function part(item, testid) { return item.querySelector('[data-testid="' + testid + '"]'); }

  function showError(item, message) {
    var node = part(item, "task-error");
    node.textContent = message || "";
    node.hidden = !message;
  }

  function closed(item, task) {
    var done = part(item, "task-closed");
    var key = "label" + task.outcome.split("_").map(function (word) {
      return word.charAt(0).toUpperCase() + word.slice(1);
    }).join("");
    done.textContent = done.dataset[key] || task.outcome;
    done.hidden = false;
    item.dataset.status = task.status;
    var status = part(item, "task-status");
    status.textContent = status.dataset.closed;
    ["task-close-form", "task-claim"].forEach(function (testid) {
      var node = part(item, testid);
      if (node) { node.remove(); }
    });
  }

  function path(item, action) {
    return "/v1/tasks/" + encodeURIComponent(item.dataset.taskId) + "/" + action;
  }

  document.querySelectorAll('[data-testid="task"]').forEach(function (item) {
    var form = part(item, "task-close-form");
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = part(item, "task-close");
        button.disabled = true;
        var body = { outcome: form.elements.outcome.value, notes: form.elements.notes.value || null };
        api(path(item, "close"), { method: "POST", body: body }).then(function (task) {
          showError(item, "");
          closed(item, task);
        }).catch(function (error) {
          button.disabled = false;
          showError(item, error.message);
        });
      });
    }
    var claim = part(item, "task-claim");
    if (claim) {
      claim.addEventListener("click", function () {
        claim.disabled = true;
        api(path(item, "claim"), { method: "POST" }).then(function () {
          window.location.reload();
        }).catch(function (error) {
          claim.disabled = false;
          showError(item, error.message);
        });
      });
    }
  });
  document.documentElement.dataset.tasksReady = "true";
})();
