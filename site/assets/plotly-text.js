/* Plotly reads pseudo-HTML (tags and entities) in most texts it draws (hover labels, legends, titles,
   cartesian ticks, parallel-coordinates labels): latentePlotlyText(value) escapes a value so that it
   shows literally there. Loaded before the scripts that draw the site's plots. */
window.latentePlotlyText = function (value) {
  "use strict";
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&#34;").replace(/'/g, "&#39;");
};
