// The upload page: send the file as the raw request body with a progress bar, then show processing status.
"use strict";
(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const bar = document.getElementById("upload-bar");
  const percent = document.getElementById("upload-percent");
  const progress = document.getElementById("upload-progress");
  const errorBox = document.getElementById("upload-error");
  const submit = document.getElementById("upload-submit");

  function showError(message, link) {
    errorBox.textContent = message;
    if (link) {  // an exact re-upload (409): the link to the video the creator already has
      const a = document.createElement("a");
      a.href = link;
      a.className = "existing-video";
      a.textContent = "See your video";
      errorBox.append(" ", a);
    }
    errorBox.hidden = false;
    submit.disabled = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    const file = document.getElementById("upload-file").files[0];
    if (!file) return showError("Choose a video file first.");
    const maxBytes = Number(form.dataset.maxBytes);
    if (file.size > maxBytes) return showError("That file is larger than the upload limit.");
    if (file.size === 0) return showError("That file is empty.");
    const params = new URLSearchParams({
      caption: document.getElementById("upload-caption").value,
      topic: document.getElementById("upload-topic").value,
    });
    const sound = document.getElementById("upload-sound");  // "use this sound" (templates/sounds/_use.html)
    if (sound) {
      params.set("sound", sound.value);
      const mode = form.querySelector('input[name="sound_mode"]:checked');
      params.set("sound_mode", mode ? mode.value : "replace");
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/uploads?" + params.toString());
    xhr.setRequestHeader("X-CSRF-Token", window.ForYou.csrf());
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      const value = Math.round((e.loaded / e.total) * 100);
      bar.value = value;
      percent.textContent = value + "%";
    };
    xhr.onload = function () {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* non-JSON error page */ }
      if (xhr.status === 201) {
        bar.value = 100;
        percent.textContent = "Uploaded";
        form.hidden = true;
        htmx.ajax("GET", body.status_url, { target: "#processing-status", swap: "innerHTML" });
      } else if (xhr.status === 401 && body.login) {
        window.location.href = body.login;
      } else {
        showError(body.error || "The upload failed (" + xhr.status + "). Please try again.", body.existing_url);
      }
    };
    xhr.onerror = function () { showError("The connection dropped during the upload. Please try again."); };
    submit.disabled = true;
    progress.hidden = false;
    xhr.send(file);
  });
})();
