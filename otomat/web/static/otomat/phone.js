/* Phone widths, in one place for every page (otomat.css, "Phone widths"):
   - every cell of a .table gets its column's header as data-label, which the stylesheet shows
     before the cell when the table is stacked into cards;
   - the main menu folds behind a "Menu" button (aria-expanded); without this script the menu
     simply stays open. */
(function () {
  "use strict";

  function labelCells(root) {
    var tables = root.querySelectorAll("table.table");
    Array.prototype.forEach.call(tables, function (table) {
      var head = table.tHead && table.tHead.rows[0];
      if (!head) { return; }
      var names = [];
      Array.prototype.forEach.call(head.cells, function (cell) {
        var span = cell.colSpan || 1;
        for (var i = 0; i < span; i++) { names.push(cell.textContent.trim()); }
      });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          var column = 0;
          Array.prototype.forEach.call(row.cells, function (cell) {
            if (!cell.hasAttribute("data-label") && (cell.colSpan || 1) === 1 && names[column]) {
              cell.setAttribute("data-label", names[column]);
            }
            column += cell.colSpan || 1;
          });
        });
      });
      table.classList.add("table-labelled");
    });
  }

  function foldMenu() {
    var bar = document.querySelector(".topbar");
    var button = bar && bar.querySelector(".nav-toggle");
    var nav = bar && document.getElementById(button ? button.getAttribute("aria-controls") : "");
    if (!button || !nav) { return; }
    bar.classList.add("nav-folds");
    button.hidden = false;
    function set(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      bar.classList.toggle("nav-open", open);
    }
    button.addEventListener("click", function () {
      set(button.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
        set(false);
        button.focus();
      }
    });
  }

  function start() {
    labelCells(document);
    foldMenu();
    // Parts of pages replaced by HTMX (ticket lists, live overview) bring new tables.
    document.body.addEventListener("htmx:afterSwap", function () { labelCells(document); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
