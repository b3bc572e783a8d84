/* The layout preview (admin/layout_preview.py): the layout as typed, around a sample,
   refreshed while staff edit (debounced, nothing saved), at two widths, light and dark;
   a colour picker beside each colour field.
   Everything the server returns is shown with textContent or as a sandboxed iframe's
   srcdoc (no scripts, an opaque origin), never as HTML in the admin's page. */
(function () {
  "use strict";

  var DELAY = 400;
  var FIELDS = ["name", "html", "css", "logo_url", "primary_color", "background_color",
                "text_color", "font_family", "footer_html", "footer_address", "legal_text",
                "help_url"];

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function byId(id) { return document.getElementById(id); }

  function messageItem(message) {
    var li = document.createElement("li");
    var where = [];
    if (message.part) { where.push(message.part); }
    if (message.line) { where.push("line " + message.line); }
    li.textContent = (where.length ? "[" + where.join(", ") + "] " : "") + message.message;
    li.setAttribute("data-code", message.code || "");
    return li;
  }

  function toHex(value) {  // "#abc" or "#aabbcc" as "#aabbcc"; null for other colours
    var v = (value || "").trim().toLowerCase();
    if (/^#[0-9a-f]{6}$/.test(v)) { return v; }
    if (/^#[0-9a-f]{3}$/.test(v)) { return "#" + v[1] + v[1] + v[2] + v[2] + v[3] + v[3]; }
    return null;
  }

  ready(function () {
    var panel = byId("tm-layout-preview");
    if (!panel || !window.fetch) { return; }
    var form = panel.closest("form");
    var status = byId("tm-layout-status");
    var errors = byId("tm-layout-errors");
    var sample = byId("tm-layout-sample");
    var timer = null;
    var sequence = 0;
    panel.hidden = false;

    function csrfToken() {
      var input = form.querySelector("input[name=csrfmiddlewaretoken]");
      return input ? input.value : "";
    }

    function show(data) {
      while (errors.firstChild) { errors.removeChild(errors.firstChild); }
      (data.errors || []).forEach(function (error) { errors.appendChild(messageItem(error)); });
      if (data.errors && data.errors.length) {
        status.textContent = "The preview shows the last version that rendered.";
        return;
      }
      byId("tm-layout-desktop").srcdoc = data.html || "";
      byId("tm-layout-mobile").srcdoc = data.html || "";
      byId("tm-layout-desktop-dark").srcdoc = data.dark_html || "";
      byId("tm-layout-mobile-dark").srcdoc = data.dark_html || "";
      status.textContent = "Preview up to date.";
    }

    function refresh() {
      var mine = ++sequence;
      var body = new FormData();
      FIELDS.forEach(function (name) {
        var field = byId("id_" + name);
        body.append(name, field ? field.value : "");
      });
      body.append("template", sample ? sample.value : "");
      status.textContent = "Refreshing the preview…";
      fetch(panel.getAttribute("data-preview-url"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {"X-CSRFToken": csrfToken()}
      }).then(function (response) { return response.json(); }).then(function (data) {
        if (mine === sequence) { show(data); }
      }).catch(function () {
        if (mine === sequence) { status.textContent = "The preview could not be refreshed."; }
      });
    }

    function schedule() {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(refresh, DELAY);
    }

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
    refresh();
  });
}());
