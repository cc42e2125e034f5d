/* The latent-space explorer: a Plotly scatter of window.LATENTE_EXPLORER (written by the site
   builder). Hovering a point shows it in the side panel; clicking keeps it there. Every value
   from the data is inserted as text (textContent), never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("latent-explorer");
  var data = window.LATENTE_EXPLORER;
  if (!root || !data || !window.Plotly) {
    return;
  }
  var plot = root.querySelector(".explorer-plot");
  var select = root.querySelector(".explorer-projection");
  var panel = root.querySelector(".explorer-panel");
  var n = data.label.length;
  var pinned = false;

  // Plotly reads pseudo-HTML in hover text: escape it so labels show literally.
  function escapeHtml(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&#34;").replace(/'/g, "&#39;");
  }

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

  function traces(projection) {
    var xy = data.projections[projection];
    return groups.map(function (group) {
      return {
        type: "scatter",
        mode: "markers",
        name: escapeHtml(group.name),
        x: group.points.map(function (i) { return xy[0][i]; }),
        y: group.points.map(function (i) { return xy[1][i]; }),
        customdata: group.points,
        text: group.points.map(function (i) {
          return escapeHtml(data.label[i]) + (data.group ? " · " + escapeHtml(data.group[i]) : "");
        }),
        hovertemplate: "%{text}<extra></extra>",
        marker: { size: 6, opacity: 0.75 }
      };
    });
  }

  var layout = {
    margin: { l: 40, r: 10, t: 30, b: 40 },
    hovermode: "closest",
    showlegend: groups.length > 1,
    legend: { itemsizing: "constant", orientation: "h", y: -0.12 },
    xaxis: { zeroline: false },
    yaxis: { zeroline: false }
  };

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
    panel.setAttribute("data-point", String(i));
  }

  // No "share chart" button: it would upload the data to Plotly's cloud.
  var config = { displaylogo: false, responsive: true, scrollZoom: true, showSendToCloud: false, plotlyServerURL: "" };
  Plotly.newPlot(plot, traces(select.value), layout, config)
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
  select.addEventListener("change", function () {
    Plotly.react(plot, traces(select.value), layout, config);
  });
})();
