/* The layout preview (admin/layout_preview.py): the layout as typed, around a sample,
   refreshed while staff edit (debounced, nothing saved), at two widths, light and dark,
   with a logo chosen for upload shown before it is saved; a colour picker beside each
   colour field.
   Everything the server returns is shown with textContent or as a sandboxed iframe's
   srcdoc (no scripts, an opaque origin), never as HTML in the admin's page. */
(function () {
  "use strict";

  var P = window.tmPreview;  // preview-client.js
  var byId = P.byId;
  var FIELDS = ["name", "html", "css", "logo_url", "primary_color", "background_color",
                "text_color", "font_family", "footer_html", "footer_address", "legal_text",
                "help_url"];

  function toHex(value) {  // "#abc" or "#aabbcc" as "#aabbcc"; null for other colours
    var v = (value || "").trim().toLowerCase();
    if (/^#[0-9a-f]{6}$/.test(v)) { return v; }
    if (/^#[0-9a-f]{3}$/.test(v)) { return "#" + v[1] + v[1] + v[2] + v[2] + v[3] + v[3]; }
    return null;
  }

  P.ready(function () {
    var panel = byId("tm-layout-preview");
    if (!panel || !window.fetch) { return; }
    var form = panel.closest("form");
    var sample = byId("tm-layout-sample");
    var logo = byId("id_logo_file");
    var language = byId("tm-layout-language");

    function translationFields() {  // the footer in other languages: translation__fr__...
      return Array.prototype.slice.call(form.querySelectorAll("[name^='translation__']"));
    }
    panel.hidden = false;

    function show(data) {
      P.fill(byId("tm-layout-errors"), data.errors || [], P.messageItem);
      if (data.errors && data.errors.length) { return false; }
      byId("tm-layout-desktop").srcdoc = data.html || "";
      byId("tm-layout-mobile").srcdoc = data.html || "";
      byId("tm-layout-desktop-dark").srcdoc = data.dark_html || "";
      byId("tm-layout-mobile-dark").srcdoc = data.dark_html || "";
      return true;
    }

    function previewBody() {
      var body = new FormData();
      FIELDS.forEach(function (name) {
        var field = byId("id_" + name);
        body.append(name, field ? field.value : "");
      });
      body.append("template", sample ? sample.value : "");
      body.append("language", language ? language.value : "");
      translationFields().forEach(function (field) { body.append(field.name, field.value); });
      if (logo && logo.files && logo.files[0]) {  // a logo chosen, not saved yet: shown too
        body.append("logo_file", logo.files[0]);
      }
      return body;
    }

    var preview = P.livePreview({
      url: panel.getAttribute("data-preview-url"), form: form,
      status: byId("tm-layout-status"), body: previewBody, show: show
    });
    var schedule = preview.schedule;

    FIELDS.forEach(function (name) {
      var field = byId("id_" + name);
      if (field) {
        field.addEventListener("input", schedule);
        field.addEventListener("change", schedule);
      }
    });
    // A colour picker beside each colour field: picking writes #rrggbb into the field
    // (which the server checks like any typed value); typing a hex colour moves the picker.
    ["primary_color", "background_color", "text_color"].forEach(function (name) {
      var field = byId("id_" + name);
      if (!field) { return; }
      var picker = document.createElement("input");
      picker.type = "color";
      picker.id = "tm-picker-" + name;
      picker.className = "tm-color-picker";
      picker.setAttribute("aria-label", "Pick the " + name.replace("_", " "));
      picker.value = toHex(field.value) || "#000000";
      field.insertAdjacentElement("afterend", picker);
      picker.addEventListener("input", function () { field.value = picker.value; schedule(); });
      field.addEventListener("input", function () {
        var hex = toHex(field.value);
        if (hex) { picker.value = hex; }
      });
    });
    if (sample) { sample.addEventListener("change", schedule); }
    if (logo) { logo.addEventListener("change", schedule); }
    if (language) { language.addEventListener("change", schedule); }
    translationFields().forEach(function (field) {
      field.addEventListener("input", schedule);
      // Editing a language's footer shows the sample in that language.
      field.addEventListener("focus", function () {
        var code = field.name.split("__")[1];
        if (language && language.value !== code && !(sample && sample.value)) {
          language.value = code;
          schedule();
        }
      });
    });
    preview.refresh();
  });
}());
