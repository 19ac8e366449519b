/* Microscope's few behaviours, without a build step or a library (and without inline
   scripts or event handlers, so that a Content Security Policy can forbid them). */
(function () {
  "use strict";

  function seconds(value) {
    if (value === null || value === undefined) return "";
    var s = Math.round(value), m = Math.floor(s / 60), h = Math.floor(m / 60);
    if (h) return h + " h " + (m % 60) + " min";
    return m ? m + " min " + (s % 60) + " s" : s + " s";
  }

  /* Jobs: every element with data-job-id and an active data-status is followed, all of a
     page's jobs in one request to the body's data-job-statuses-url every 3 s; its
     .job-status, .job-progress, .job-note, .job-duration and .job-error follow the job, and
     the page reloads once a job reaches a state named in data-reload-on (its results are
     then on the page). */
  function show(row, job) {
    row.dataset.status = job.status;
    var status = row.querySelector(".job-status");
    if (status) status.textContent = job.status;
    var progress = row.querySelector(".job-progress");
    if (progress) progress.textContent = job.total ? job.done + "/" + job.total : "";
    var note = row.querySelector(".job-note");
    if (note) note.textContent = job.note || "";
    var duration = row.querySelector(".job-duration");
    if (duration) duration.textContent = seconds(job.duration);
    var error = row.querySelector(".job-error");
    if (error) { error.textContent = job.error; error.hidden = !job.error; }
    return (row.dataset.reloadOn || "done").split(" ").indexOf(job.status) >= 0;
  }

  function poll() {
    var rows = Array.prototype.filter.call(
      document.querySelectorAll("[data-job-id][data-status]"),
      function (row) { return row.dataset.status === "queued" || row.dataset.status === "running"; }
    );
    if (!rows.length) return;
    var query = rows.map(function (row) { return "id=" + encodeURIComponent(row.dataset.jobId); });
    fetch(document.body.dataset.jobStatusesUrl + "?" + query.join("&"), {
      headers: {Accept: "application/json"}
    })
      .then(function (response) {
        if (!response.ok) throw new Error("job statuses: HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        var jobs = {};
        body.jobs.forEach(function (job) { jobs[job.id] = job; });
        var ended = rows.map(function (row) {
          var job = jobs[row.dataset.jobId];
          if (job) return show(row, job);
          row.dataset.status = "gone";  /* deleted meanwhile: no longer followed */
          return false;
        });
        if (ended.some(Boolean)) location.reload(); else setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 10000); });  /* offline, or the server erred */
  }

  /* Tabs: a click shows its panel without a reload (the link works without scripts). */
  document.addEventListener("click", function (event) {
    var tab = event.target.closest ? event.target.closest('[role="tab"]') : null;
    if (!tab) return;
    var list = tab.closest('[role="tablist"]');
    event.preventDefault();
    Array.prototype.forEach.call(list.querySelectorAll('[role="tab"]'), function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
    history.replaceState(null, "", tab.getAttribute("href"));
  });

  /* Buttons that ask first: data-confirm holds the question. */
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", poll);
  else poll();
})();
