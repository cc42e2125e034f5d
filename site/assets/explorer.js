/* The latent-space explorer: a Plotly scatter of window.LATENTE_EXPLORER (written by the site
   builder). Hovering a point shows it in the side panel; clicking keeps it there. Every value
   from the data is inserted as text (textContent, or escaped where Plotly reads it), never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("latent-explorer");
  var data = window.LATENTE_EXPLORER;
  if (!root || !data || !window.Plotly) {
    return;
  }
  var plot = root.querySelector(".explorer-plot");
  var select = root.querySelector(".explorer-projection");
  var colourSelect = root.querySelector(".explorer-colour");  // absent when there is one colouring or none
  var panel = root.querySelector(".explorer-panel");
  var n = data.label.length;
  var pinned = false;

  var escapeHtml = window.latentePlotlyText;  // for every text Plotly draws (hover, legend, titles, ticks)

  function groupsOf() {
    var order = [];
    var members = {};
    for (var i = 0; i < n; i++) {
      var key = data.group ? String(data.group[i]) : "";
      if (!(key in members)) {
        members[key] = [];
        order.push(key);
      }
      members[key].push(i);
    }
    order.sort(function (a, b) {
      var x = Number(a), y = Number(b);
      return (isNaN(x) || isNaN(y)) ? a.localeCompare(b) : x - y;
    });
    return order.map(function (key) { return { name: key, points: members[key] }; });
  }

  var groups = groupsOf();
  var everyPoint = data.label.map(function (_, i) { return i; });

  // The scale column the points are coloured by, or null for the group: the page's choice, else the
  // one scale of an explorer without a group (the select's option "" is the group).
  function chosenScale() {
    var scales = Object.keys(data.scales);
    if (colourSelect) {
      return colourSelect.value === "" ? null : colourSelect.value;
    }
    return !data.group && scales.length === 1 ? scales[0] : null;
  }

  function points(xy, indices) {
    return {
      type: "scatter",
      mode: "markers",
      x: indices.map(function (i) { return xy[0][i]; }),
      y: indices.map(function (i) { return xy[1][i]; }),
      customdata: indices,
      text: indices.map(function (i) {
        return escapeHtml(data.label[i]) + (data.group ? " · " + escapeHtml(data.group[i]) : "");
      }),
      hovertemplate: "%{text}<extra></extra>"
    };
  }

  // One trace per group with a legend, or one trace on a continuous colour scale with a colour bar.
  function traces(projection, scale) {
    var xy = data.projections[projection];
    if (scale !== null) {
      var trace = points(xy, everyPoint);
      trace.marker = {
        size: 6, opacity: 0.75, color: data.scales[scale],
        colorscale: "Viridis", showscale: true, colorbar: { title: { text: escapeHtml(scale) } }
      };
      return [trace];
    }
    return groups.map(function (group) {
      var trace = points(xy, group.points);
      trace.name = escapeHtml(group.name);
      trace.marker = { size: 6, opacity: 0.75 };
      return trace;
    });
  }

  function layout(scale) {
    return {
      margin: { l: 40, r: 10, t: 30, b: 40 },
      hovermode: "closest",
      showlegend: scale === null && groups.length > 1,
      legend: { itemsizing: "constant", orientation: "h", y: -0.12 },
      xaxis: { zeroline: false },
      yaxis: { zeroline: false }
    };
  }

  function setText(selector, value) {
    var node = panel.querySelector(selector);
    if (node) {
      node.textContent = value === null || value === undefined ? "–" : String(value);
    }
  }

  function show(i) {
    setText('[data-field="label"]', data.label[i]);
    if (data.group) {
      setText('[data-field="group"]', data.group[i]);
    }
    panel.querySelectorAll("[data-detail]").forEach(function (node) {
      node.textContent = String(data.details[node.getAttribute("data-detail")][i]);
    });
    if (data.text) {
      setText('[data-field="text"]', data.text[i]);
    }
    var media = panel.querySelector('[data-field="media"]');
    if (media) {
      media.textContent = "";
      var any = false;
      Object.keys(data.media).forEach(function (name) {
        var url = data.media[name][i];
        if (!url) {
          return;
        }
        any = true;
        var figure = document.createElement("figure");
        var element = document.createElement(data.media_kinds[name] === "audio" ? "audio" : "img");
        if (data.media_kinds[name] === "audio") {
          element.controls = true;
          element.preload = "none";
        } else {
          element.alt = name;
        }
        element.src = url;
        var caption = document.createElement("figcaption");
        caption.textContent = name;
        figure.appendChild(caption);
        figure.appendChild(element);
        media.appendChild(figure);
      });
      if (!any) {
        media.textContent = panel.getAttribute("data-no-media");
      }
    }
    panel.querySelectorAll("[data-series]").forEach(function (figure) {
      showSeries(figure, i);
    });
    panel.setAttribute("data-point", String(i));
  }

  // One line or bar chart per series (a bar series' columns side by side: Plotly's default barmode
  // "group"), redrawn in place (Plotly.react) so that hovering adds no nodes.
  var seriesConfig = { displayModeBar: false, responsive: true, showSendToCloud: false, plotlyServerURL: "" };

  function axis(title) {
    return { title: { text: escapeHtml(title) }, zeroline: false, automargin: true };
  }

  function showSeries(figure, i) {
    var series = data.series[figure.getAttribute("data-series")];
    var chart = figure.querySelector(".explorer-series-chart");
    var none = figure.querySelector(".explorer-series-none");
    var drawn = series.columns.some(function (column) { return series.values[column][i] !== null; });
    chart.hidden = !drawn;
    none.hidden = drawn;
    if (!drawn) {
      none.textContent = panel.getAttribute("data-no-series");
      return;
    }
    var bar = series.kind === "bar";
    var start = series.x_start ? series.x_start[i] : 0;
    var step = series.x_step ? series.x_step[i] : 1;
    var columnTraces = series.columns.map(function (column) {
      var y = series.values[column][i] || [];
      if (bar) {
        return { type: "bar", name: escapeHtml(column), x: series.x_labels[i].map(escapeHtml), y: y };
      }
      return { type: "scatter", mode: "lines", name: escapeHtml(column), x: y.map(function (_, k) { return start + k * step; }), y: y };
    });
    var xaxis = axis(figure.getAttribute("data-x-title"));
    if (bar) {
      xaxis.type = "category";  // labels such as "1" or "2020-01-01" name bars, they are not positions
    }
    Plotly.react(chart, columnTraces, {
      margin: { l: 10, r: 10, t: 10, b: 10 },
      showlegend: series.columns.length > 1,
      legend: { orientation: "h", y: 1.02, yanchor: "bottom" },
      xaxis: xaxis,
      yaxis: axis(figure.getAttribute("data-y-title"))
    }, seriesConfig);
  }

  // No "share chart" button: it would upload the data to Plotly's cloud.
  var config = { displaylogo: false, responsive: true, scrollZoom: true, showSendToCloud: false, plotlyServerURL: "" };

  // Redraws with both choices, so that changing one keeps the other.
  function draw() {
    var scale = chosenScale();
    return Plotly.react(plot, traces(select.value, scale), layout(scale), config);
  }

  draw()
    .then(function () {
      plot.on("plotly_hover", function (event) {
        if (!pinned) {
          show(event.points[0].customdata);
        }
      });
      plot.on("plotly_click", function (event) {
        pinned = true;
        show(event.points[0].customdata);
      });
      root.setAttribute("data-ready", "true");
    });
  select.addEventListener("change", draw);
  if (colourSelect) {
    colourSelect.addEventListener("change", draw);
  }
})();
