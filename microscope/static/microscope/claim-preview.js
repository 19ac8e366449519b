/* Live preview of a circuit expression: asks the server to parse it, draws the terms or
   points at the error's column. Builds the DOM with textContent only (no HTML injection). */
(function () {
  document.querySelectorAll("form[data-preview-url]").forEach(function (form) {
    var input = form.querySelector("[name=expression]");
    var out = form.querySelector(".expression-preview");
    if (!input || !out) return;
    var row = form.querySelector(".expression-row");
    var timer = null, sequence = 0;
    function el(tag, cls, text) {
      var node = document.createElement(tag);
      if (cls) node.className = cls;
      if (text !== undefined) node.textContent = text;
      return node;
    }
    function card(term, factor) {
      var link = el("a", "card");
      link.href = term.url; link.title = term.ref;
      if (term.thumbnail) { var img = el("img"); img.src = term.thumbnail; img.alt = ""; if (term.thumbnail_is_example) img.title = "top dataset example (no feature visualization yet)"; link.appendChild(img); }
      else link.appendChild(el("span", "blank"));
      link.appendChild(el("span", "", (factor ? factor + " × " : "") + term.short_ref));
      return link;
    }
    function show(data) {
      out.replaceChildren();
      if (data.ok) {
        var drawing = el("div", "circuit");
        drawing.appendChild(card(data.target));
        drawing.appendChild(el("span", "op", "="));
        data.terms.forEach(function (term, i) {
          var c = term.coefficient, m = Math.abs(c);
          if (i > 0 || c < 0) drawing.appendChild(el("span", "op", c < 0 ? "−" : "+"));
          drawing.appendChild(card(term, m === 1 ? "" : String(m)));
        });
        out.appendChild(drawing);
        out.appendChild(el("p", "muted preview-ok", "Reads as: " + data.canonical));
      } else {
        var error = data.error || {message: "could not read the expression"};
        var message = el("p", "error preview-error", (error.column ? "Column " + error.column + ": " : "") + error.message);
        out.appendChild(message);
        if (error.column) {
          out.appendChild(el("pre", "caret", input.value + "\n" + " ".repeat(error.column - 1) + "^"));
        }
      }
    }
    function run() {
      var mine = ++sequence;
      var params = new URLSearchParams({expression: input.value, target: form.dataset.target || ""});
      fetch(form.dataset.previewUrl + "?" + params.toString(), {headers: {Accept: "application/json"}})
        .then(function (response) { return response.json(); })
        .then(function (data) { if (mine === sequence) show(data); })
        .catch(function () { if (mine === sequence) show({ok: false, error: {message: "preview unavailable"}}); });
    }
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 200); });
    function syncKind() {
      var chosen = form.querySelector("[name=kind]:checked");
      var circuit = !chosen || chosen.value === "circuit";
      if (row) row.hidden = !circuit;
      input.disabled = !circuit;  // a feature claim sends no expression
      out.hidden = !circuit;
    }
    form.querySelectorAll("[name=kind]").forEach(function (radio) { radio.addEventListener("change", syncKind); });
    syncKind();
    if (form.dataset.previewNow) run();
  });
})();
