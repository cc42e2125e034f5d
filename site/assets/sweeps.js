/* The sweeps page's parallel-coordinates plots of window.LATENTE_SWEEPS (written by the site builder):
   each `.sweep-plot` element draws the plot its data-sweep indexes, one line per finished trial,
   coloured by the objective (its last dimension), so that the best trials are bright either way.
   Every text from the data shows literally: Plotly reads pseudo-HTML in axis labels, so keys are
   escaped there, and draws tick labels (choice values) as plain text, so they are given as they are. */
(function () {
  "use strict";
  var data = window.LATENTE_SWEEPS;
  if (!data || !window.Plotly) {
    return;
  }
  var escapeHtml = window.latentePlotlyText;
  // No "share chart" button: it would upload the data to Plotly's cloud.
  var config = { displaylogo: false, responsive: true, showSendToCloud: false, plotlyServerURL: "" };

  document.querySelectorAll(".sweep-plot").forEach(function (element) {
    var plot = data.plots[Number(element.getAttribute("data-sweep"))];
    var dimensions = plot.dimensions.map(function (given) {
      var dimension = { label: escapeHtml(given.label), values: given.values };
      if (given.range) {
        dimension.range = given.range;
      }
      if (given.tickvals) {
        dimension.tickvals = given.tickvals;
        dimension.ticktext = given.ticktext;
      }
      return dimension;
    });
    var objective = plot.dimensions[plot.dimensions.length - 1].values;
    var trace = {
      type: "parcoords", dimensions: dimensions, labelangle: -15,
      line: { color: objective, colorscale: "Viridis", reversescale: plot.minimize, showscale: true }
    };
    Plotly.newPlot(element, [trace], { margin: { l: 80, r: 80, t: 90, b: 30 }, separators: data.separators }, config)
      .then(function () {
        element.setAttribute("data-ready", "true");
      });
  });
})();
