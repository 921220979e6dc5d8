// Progressive enhancement only: every page works without this file.
// A "copy" button (hidden until this script runs) copies its input's value to the clipboard.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    if (!input) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () {
        if (status) {
          status.textContent = "Copied to the clipboard.";
        }
      };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          if (status) {
            status.textContent = "Could not copy: select the key and copy it by hand.";
          }
        });
      } else if (document.execCommand("copy")) {
        done();
      }
    });
  });
});
