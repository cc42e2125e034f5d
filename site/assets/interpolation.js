/* The latent interpolation: a slider over the steps of window.LATENTE_INTERPOLATION (written by the
   site builder), each the decoding of one point on the path between two items' codes, showing that
   step's image, audio, text and details. The data serves both languages, so each step's position, as
   the page's language writes it, is read from the slider's datalist. Every value from the data is
   inserted as text (textContent) or as a URL, never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("latent-interpolation");
  var data = window.LATENTE_INTERPOLATION;
  if (!root || !data) {
    return;
  }
  var slider = root.querySelector('input[type="range"]');
  var position = root.querySelector(".interpolation-position");
  var positions = Array.prototype.map.call(root.querySelectorAll("datalist option"), function (option) {
    return option.label;
  });
  var image = root.querySelector('[data-field="image"]');  // each absent when the page shows no such column
  var audio = root.querySelector('[data-field="audio"]');
  var text = root.querySelector('[data-field="text"]');
  var noMedia = root.querySelector(".interpolation-no-media");

  // A step without the file (it does not exist) hides the element and its caption.
  function showFile(element, url) {
    element.parentNode.hidden = !url;
    if (url) {
      element.src = url;
    } else {
      element.removeAttribute("src");
    }
  }

  function show(i) {
    var step = data.steps[i];
    position.textContent = positions[i];
    slider.setAttribute("aria-valuetext", positions[i]);
    if (image) {
      showFile(image, step.image);
    }
    if (audio) {
      showFile(audio, step.audio);
    }
    if (noMedia) {
      noMedia.hidden = Boolean(step.image || step.audio);
    }
    if (text) {
      text.textContent = step.text;
    }
    root.querySelectorAll("[data-detail]").forEach(function (node) {
      node.textContent = step.details[node.getAttribute("data-detail")];
    });
    root.setAttribute("data-step", String(i));
  }

  slider.addEventListener("input", function () {
    show(Number(slider.value));
  });
  show(Number(slider.value));  // the browser may have kept the slider where it was before a reload
  root.setAttribute("data-ready", "true");
})();
