/* Report pages: submit pickers on change, keep custom dates in sync, copy built links. No inline script. */
(function () {
  "use strict";

  function each(selector, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
  }

  // Changing the grouping starts a fresh drill-down.
  each("form.report-form select[name=by]", function (select) {
    select.addEventListener("change", function () {
      each("form.report-form input[type=hidden][name^=f_]", function (input) {
        input.parentNode.removeChild(input);
      });
    });
  });

  each("select[data-autosubmit]", function (select) {
    select.addEventListener("change", function () {
      if (select.hasAttribute("data-range") && select.value === "custom") {
        var from = select.form.querySelector("input[name=from]");
        if (from) { from.focus(); }
        return;
      }
      select.form.submit();
    });
  });

  // Typing a date means a custom range, not the preset the page was opened with.
  each("form.report-form input[type=date]", function (input) {
    input.addEventListener("change", function () {
      var range = input.form.querySelector("select[data-range]");
      if (range) { range.value = "custom"; }
    });
  });

  each("button[data-copy]", function (button) {
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(target.textContent).then(function () {
        button.textContent = "Copied";
      });
    });
  });
})();
