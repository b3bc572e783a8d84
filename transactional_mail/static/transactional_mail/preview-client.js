/* What both admin previews (the template editor's and the layout form's) share: posting the
   form's unsaved fields while staff type (debounced; a late answer to an older request is
   dropped), the status line, and the list items for errors and warnings. Loaded before
   editor.js and layout-preview.js as window.tmPreview. Nothing the server returns is put
   into the admin's page as HTML: text goes in with textContent, previews into sandboxed
   iframes' srcdoc. */
(function () {
  "use strict";

  var DELAY = 400;

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function byId(id) { return document.getElementById(id); }

  function fill(list, items, render) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (item) { list.appendChild(render(item)); });
  }

  function messageItem(message) {  // "[html, line 3] The message", its code kept for tests
    var li = document.createElement("li");
    var where = [];
    if (message.part) { where.push(message.part); }
    if (message.line) { where.push("line " + message.line); }
    li.textContent = (where.length ? "[" + where.join(", ") + "] " : "") + message.message;
    li.setAttribute("data-code", message.code || "");
    return li;
  }

  /* A POST to url with the form's CSRF token, same origin only; resolves to the JSON. */
  function poster(form) {
    return function (url, body) {
      var token = form.querySelector("input[name=csrfmiddlewaretoken]");
      return fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {"X-CSRFToken": token ? token.value : ""}
      }).then(function (response) { return response.json(); });
    };
  }

  /* The live preview: options.url, options.form, options.status (the status element),
     options.body() (a FormData of what to preview) and options.show(data) (returns false
     when the data held errors and the last good preview stays). Returns schedule() (call
     on every edit) and refresh() (now). */
  function livePreview(options) {
    var post = poster(options.form);
    var timer = null;
    var sequence = 0;

    function refresh() {
      var mine = ++sequence;
      options.status.textContent = "Refreshing the preview…";
      post(options.url, options.body()).then(function (data) {
        if (mine !== sequence) { return; }
        options.status.textContent = options.show(data) === false
          ? "The preview shows the last version that rendered." : "Preview up to date.";
      }).catch(function () {
        if (mine === sequence) { options.status.textContent = "The preview could not be refreshed."; }
      });
    }

    function schedule() {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(refresh, DELAY);
    }

    return {schedule: schedule, refresh: refresh, post: post};
  }

  window.tmPreview = {
    DELAY: DELAY, ready: ready, byId: byId, fill: fill, messageItem: messageItem,
    livePreview: livePreview
  };
}());
