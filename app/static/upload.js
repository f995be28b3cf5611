// The upload view: choose or drop images, send them with the gates as overrides, draw the
// verdicts; a changed gate asks the service again for the same files.

import { postForm } from "./api.js";
import { download, h, replace } from "./dom.js";
import { facesOf, renderReport } from "./report.js";
import { fromBase64, zipBlob } from "./zip.js";

const REASK_DELAY_MS = 400;

function gateControl(gate) {
  const id = `gate-${gate.name}`;
  const unit = gate.unit ? ` (${gate.unit})` : "";
  const input = h("input", {
    id,
    name: gate.name,
    type: "number",
    min: gate.min,
    max: gate.max,
    step: gate.step,
    value: gate.default,
    required: true,
    inputmode: "decimal",
    dataset: { default: String(gate.default) },
    "aria-describedby": `${id}-range`,
  });
  return h(
    "div",
    { className: "gate" },
    h("label", { for: id, text: `${gate.label}${unit}` }),
    input,
    h("span", {
      id: `${id}-range`,
      className: "help",
      text: `${gate.min} to ${gate.max}; default ${gate.default}`,
    }),
  );
}

function stem(name) {
  const base = String(name || "image").replace(/\.[^.]*$/, "");
  return base.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "image";
}

export function setupUpload(config, showError) {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const gates = document.getElementById("gates");
  const results = document.getElementById("results");
  const errorBox = document.getElementById("upload-error");
  const progressBox = document.getElementById("upload-progress");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const inputs = config.gates.map((gate) => {
    const control = gateControl(gate);
    gates.append(control);
    return control.querySelector("input");
  });

  let files = [];
  let current = null;
  let timer = null;
  const previews = new Map();

  const setError = (text) => {
    errorBox.textContent = text || "";
  };

  function query() {
    const params = new URLSearchParams({ images: "aligned", mark: "0", rejected: "1" });
    for (const field of inputs) {
      if (field.value !== "" && Number(field.value) !== Number(field.dataset.default)) {
        params.set(field.name, field.value);
      }
    }
    return params;
  }

  function invalidGate() {
    for (const field of inputs) {
      if (!field.checkValidity()) {
        const label = document.querySelector(`label[for="${field.id}"]`).textContent;
        return `${label} must be a number from ${field.min} to ${field.max}`;
      }
    }
    return null;
  }

  function preview(file) {
    if (!previews.has(file)) previews.set(file, URL.createObjectURL(file));
    return previews.get(file);
  }

  function showProgress(fraction) {
    progressBox.hidden = false;
    if (fraction === null) {
      progress.removeAttribute("value");
      progressText.textContent = "Assessing…";
    } else {
      progress.value = Math.round(fraction * 100);
      progressText.textContent = `Sending ${Math.round(fraction * 100)} %`;
    }
  }

  function entryView(entry, file) {
    const name = entry.filename || file.name;
    const section = h("section", { className: "result" }, h("h3", { text: name }));
    if (entry.error) {
      section.append(
        h("p", {
          className: "error",
          role: "alert",
          text: `${name}: ${entry.error.message} (${entry.status ? `HTTP ${entry.status}, ` : ""}${entry.error.code})`,
        }),
      );
      return section;
    }
    const accepted = facesOf(entry).filter((f) => f.accepted);
    const base = stem(name);
    const saveReport = h("button", {
      type: "button",
      text: "Download report (JSON)",
      onclick: () =>
        download(
          new Blob([JSON.stringify(entry, null, 2)], { type: "application/json" }),
          `${base}-report.json`,
        ),
    });
    const saveCrops = h("button", {
      type: "button",
      text: `Download accepted crops (${accepted.length}, ZIP)`,
      disabled: accepted.length === 0,
      onclick: () => {
        const crops = accepted
          .filter((f) => f.face.face_align_images_b64)
          .map((f) => ({ name: `${base}_${f.index}.png`, bytes: fromBase64(f.face.face_align_images_b64) }));
        download(zipBlob(crops), `${base}-accepted.zip`);
      },
    });
    section.append(
      h("div", { className: "actions" }, saveReport, saveCrops),
      renderReport(entry, { imageUrl: preview(file), alt: `uploaded image ${name}` }),
    );
    return section;
  }

  async function assess() {
    clearTimeout(timer);
    setError("");
    if (!files.length) {
      setError("Choose one or more image files first.");
      return;
    }
    const invalid = invalidGate();
    if (invalid) {
      setError(invalid);
      return;
    }
    if (current) current.abort();
    const many = files.length > 1;
    const body = new FormData();
    for (const file of files) body.append("image", file, file.name);
    const path = `${many ? "/uploads" : "/upload"}?${query()}`;
    const call = postForm(path, body, showProgress);
    current = call;
    showProgress(0);
    try {
      const answer = await call.promise;
      if (current !== call) return;
      const entries = many ? answer : [{ ...answer, filename: files[0].name }];
      replace(results, entries.map((entry, i) => entryView(entry, files[i])));
    } catch (error) {
      if (current !== call || error.code === "aborted") return;
      replace(results);
      setError(`${many ? "The upload" : files[0].name} was refused: ${error.describe()}`);
      showError(error);
    } finally {
      if (current === call) {
        current = null;
        progressBox.hidden = true;
      }
    }
  }

  function choose(list) {
    for (const url of previews.values()) URL.revokeObjectURL(url);
    previews.clear();
    files = Array.from(list || []);
    if (files.length) assess();
  }

  input.addEventListener("change", () => choose(input.files));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    assess();
  });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    choose(event.dataTransfer.files);
  });
  gates.addEventListener("input", () => {
    clearTimeout(timer);
    if (files.length) timer = setTimeout(assess, REASK_DELAY_MS);
  });
  document.getElementById("gates-reset").addEventListener("click", () => {
    for (const field of inputs) field.value = field.dataset.default;
    if (files.length) assess();
  });
}
