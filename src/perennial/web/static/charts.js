// Draws every chart of the page with plotly.js (served by the app itself).
// A chart is a container <div data-chart="ID"> and a data block
// <script type="application/json" id="ID"> holding {data, layout} built on the
// server; nothing here is inline, so the Content-Security-Policy stays 'self'.
(function () {
  "use strict";

  var config = { displayModeBar: false, responsive: true };

  function draw(container) {
    var block = document.getElementById(container.getAttribute("data-chart"));
    if (!block || typeof Plotly === "undefined") {
      return;
    }
    var figure = JSON.parse(block.textContent);
    Plotly.newPlot(container, figure.data, figure.layout, config).then(function () {
      container.setAttribute("data-drawn", "true");
    });
  }

  function drawAll() {
    var containers = document.querySelectorAll("[data-chart]");
    for (var i = 0; i < containers.length; i += 1) {
      draw(containers[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
