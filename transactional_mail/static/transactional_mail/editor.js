/* The template editor (admin/editor.py): CodeMirror over the textareas, a live preview
   refreshed while typing (debounced, nothing saved) and the test send. Everything the
   server returns is shown with textContent or as an iframe's srcdoc (sandboxed, no
   scripts), never as HTML in the admin's page. Without this file the form still works. */
(function () {
  "use strict";

  var DELAY = 400;

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function byId(id) { return document.getElementById(id); }

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function fieldValue(name) {
    var field = byId("id_" + name);
    return field ? field.value : "";
  }

  function fill(list, items, render) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (item) { list.appendChild(render(item)); });
  }

  function messageItem(message) {
    var li = document.createElement("li");
    var where = [];
    if (message.part) { where.push(message.part); }
    if (message.line) { where.push("line " + message.line); }
    li.textContent = (where.length ? "[" + where.join(", ") + "] " : "") + message.message;
    li.setAttribute("data-code", message.code || "");
    return li;
  }

  ready(function () {
    var panel = byId("tm-editor");
    if (!panel || !window.fetch) { return; }
    var form = panel.closest("form");
    panel.hidden = false;
    var editors = {};

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

    function post(url, body) {  // same-origin, with the form's CSRF token; JSON back
      return fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {"X-CSRFToken": csrfToken(form)}
      }).then(function (response) { return response.json(); });
    }

    var timer = null;
    var sequence = 0;
    var status = byId("tm-status");

    function schedule() {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(refresh, DELAY);
    }

    function show(data) {
      fill(byId("tm-errors"), data.errors || [], messageItem);
      fill(byId("tm-warnings"), data.warnings || [], messageItem);
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
        fill(byId("tm-variables"), data.variables, function (path) {
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
      if (data.errors && data.errors.length) {
        status.textContent = "The preview shows the last version that rendered.";
        return;
      }
      byId("tm-subject").textContent = data.subject || "";
      byId("tm-frame-desktop").srcdoc = data.html || "";
      byId("tm-frame-mobile").srcdoc = data.html || "";
      byId("tm-text").textContent = data.text || "";
      status.textContent = "Preview up to date.";
    }

    function refresh() {
      var mine = ++sequence;
      var body = new FormData();
      ["subject", "preheader", "html", "text", "layout", "language", "sample_context"].forEach(function (name) {
        body.append(name, fieldValue(name));
      });
      body.append("template_id", panel.getAttribute("data-template-id") || "");
      var picked = byId("tm-object-select");
      if (picked && picked.value) {  // a real object: its trigger's context, not the sample
        body.append("object_id", picked.value);
      }
      status.textContent = "Refreshing the preview…";
      post(panel.getAttribute("data-preview-url"), body).then(function (data) {
        if (mine === sequence) { show(data); }
      }).catch(function () {
        if (mine === sequence) { status.textContent = "The preview could not be refreshed."; }
      });
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
        searchTimer = setTimeout(search, DELAY);
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
        post(panel.getAttribute("data-send-url"), body).then(function (data) {
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

    refresh();
  });
}());
