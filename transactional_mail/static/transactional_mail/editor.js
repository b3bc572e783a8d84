/* The template editor (admin/editor.py): CodeMirror over the textareas, a live preview
   refreshed while typing (debounced, nothing saved) and the test send. Everything the
   server returns is shown with textContent or as an iframe's srcdoc (sandboxed, no
   scripts), never as HTML in the admin's page. Without this file the form still works. */
(function () {
  "use strict";

  var P = window.tmPreview;  // preview-client.js
  var byId = P.byId;

  function fieldValue(name) {
    var field = byId("id_" + name);
    return field ? field.value : "";
  }

  P.ready(function () {
    var panel = byId("tm-editor");
    if (!panel || !window.fetch) { return; }
    var form = panel.closest("form");
    panel.hidden = false;
    var editors = {};
    // show() and previewBody() are below.
    var preview = P.livePreview({
      url: panel.getAttribute("data-preview-url"), form: form, status: byId("tm-status"),
      body: previewBody, show: show
    });
    var schedule = preview.schedule;

    if (window.CodeMirror) {
      ["subject", "html", "text"].forEach(function (name) {
        var textarea = byId("id_" + name);
        if (!textarea) { return; }
        var single = name === "subject";
        var editor = window.CodeMirror.fromTextArea(textarea, {
          mode: "django",
          lineNumbers: !single,
          lineWrapping: true,
          viewportMargin: Infinity
        });
        if (single) {
          editor.getWrapperElement().parentNode.classList.add("tm-editor-subject");
          editor.on("beforeChange", function (cm, change) {  // a subject is one line
            if (change.update) {
              change.update(change.from, change.to, [change.text.join(" ")]);
            }
          });
        }
        editor.getWrapperElement().parentNode.classList.add("tm-editor");
        editor.on("change", function () { editor.save(); schedule(); });
        editors[name] = editor;
      });
    }

    function show(data) {
      P.fill(byId("tm-errors"), data.errors || [], P.messageItem);
      P.fill(byId("tm-warnings"), data.warnings || [], P.messageItem);
      var titles = {
        sample: "Variables in the sample context",
        object: "Variables in the object's context",
        trigger: "Variables of the trigger's context"
      };
      if (data.variables_source && titles[data.variables_source]) {
        byId("tm-variables-title").textContent = titles[data.variables_source];
      }
      byId("tm-variables-note").textContent = data.variables_note || "";
      if (data.variables) {
        P.fill(byId("tm-variables"), data.variables, function (path) {
          var li = document.createElement("li");
          var button = document.createElement("button");
          button.type = "button";
          button.textContent = path;
          button.addEventListener("click", function () {
            var snippet = "{{ " + path + " }}";
            if (editors.html) { editors.html.replaceSelection(snippet); editors.html.focus(); }
          });
          li.appendChild(button);
          return li;
        });
      }
      if (data.errors && data.errors.length) { return false; }
      byId("tm-subject").textContent = data.subject || "";
      byId("tm-frame-desktop").srcdoc = data.html || "";
      byId("tm-frame-mobile").srcdoc = data.html || "";
      byId("tm-text").textContent = data.text || "";
      return true;
    }

    function previewBody() {
      var body = new FormData();
      ["key", "subject", "preheader", "html", "text", "layout", "language", "category", "sample_context"].forEach(function (name) {
        body.append(name, fieldValue(name));
      });
      body.append("template_id", panel.getAttribute("data-template-id") || "");
      var picked = byId("tm-object-select");
      if (picked && picked.value) {  // a real object: its trigger's context, not the sample
        body.append("object_id", picked.value);
      }
      return body;
    }

    ["preheader", "layout", "language", "sample_context"].forEach(function (name) {
      var field = byId("id_" + name);
      if (field) {
        field.addEventListener("input", schedule);
        field.addEventListener("change", schedule);
      }
    });
    if (!window.CodeMirror) {
      ["subject", "html", "text"].forEach(function (name) {
        var field = byId("id_" + name);
        if (field) { field.addEventListener("input", schedule); }
      });
    }

    var picker = byId("tm-object");
    if (picker) {
      var query = byId("tm-object-q");
      var select = byId("tm-object-select");
      var searchTimer = null;
      var searchSequence = 0;
      var search = function () {
        var mine = ++searchSequence;
        var url = picker.getAttribute("data-search-url") + "?template=" +
          encodeURIComponent(picker.getAttribute("data-template-id")) + "&q=" +
          encodeURIComponent(query.value);
        fetch(url, {credentials: "same-origin"}).then(function (response) {
          return response.json();
        }).then(function (data) {
          if (mine !== searchSequence) { return; }
          var chosen = select.value;
          while (select.options.length > 1) { select.remove(1); }
          (data.results || []).forEach(function (item) {
            var option = document.createElement("option");
            option.value = item.id;
            option.textContent = "#" + item.id + " " + item.str;
            select.appendChild(option);
          });
          select.value = chosen;
          if (select.value !== chosen) { select.value = ""; schedule(); }
        });
      };
      query.addEventListener("input", function () {
        if (searchTimer) { clearTimeout(searchTimer); }
        searchTimer = setTimeout(search, P.DELAY);
      });
      select.addEventListener("change", schedule);
      search();
    }

    var button = byId("tm-test-button");
    if (button) {
      button.addEventListener("click", function () {
        var result = byId("tm-test-result");
        var body = new FormData();
        body.append("to", byId("tm-test-to").value);
        body.append("sample_context", fieldValue("sample_context"));
        button.disabled = true;
        result.textContent = "Sending…";
        preview.post(panel.getAttribute("data-send-url"), body).then(function (data) {
          result.textContent = data.message || (data.errors || []).map(function (e) {
            return e.message;
          }).join(" ");
        }).catch(function () {
          result.textContent = "The test email could not be sent.";
        }).then(function () {
          button.disabled = false;
        });
      });
    }

    preview.refresh();
  });
}());
