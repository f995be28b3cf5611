// One image report drawn for people: the picture with every face box, and a card per face
// with its aligned crop and every measure the report gives (rendered generically, so new
// keys such as a face's ``quality`` object show up without changes here).

import { h, s } from "./dom.js";

const LABELS = {
  face_confidence: "confidence",
  face_blur: "blur",
  face_pose: "pose (°)",
  quality: "quality",
  face_coordinate: "box [x, y, w, h]",
  facie5points: "landmarks",
  face_id: "face id",
};
const TITLES = {
  face_blur: "variance of the Laplacian of the aligned face: higher is sharper",
  face_pose: "head pose in degrees: yaw > 0 turned to the image's right, pitch > 0 looking up",
};
// The verdict's reasons head the card; where the face is goes in a fold at the end.
const FIRST = ["face_confidence", "face_blur", "face_pose", "quality"];
const GEOMETRY = ["face_coordinate", "facie5points", "face_id"];
const SHOWN_ELSEWHERE = ["reasons"];

/** Every face of a report, accepted and rejected, numbered from 1 left to right. */
export function facesOf(report) {
  const faces = [
    ...(report.resp || []).map((face) => ({ face, accepted: true })),
    ...(report.rejected || []).map((face) => ({ face, accepted: false })),
  ];
  const box = (f) => (Array.isArray(f.face.face_coordinate) ? f.face.face_coordinate : [0, 0]);
  faces.sort((a, b) => box(a)[0] - box(b)[0] || box(a)[1] - box(b)[1]);
  faces.forEach((f, i) => {
    f.index = i + 1;
  });
  return faces;
}

export function formatNumber(value) {
  if (Number.isInteger(value)) return String(value);
  return String(Math.round(value * 10000) / 10000);
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A value of the report as nodes: numbers rounded, objects as lists or tables, all text. */
export function renderValue(value) {
  if (value === null || value === undefined) return h("span", { className: "na", text: "not measured" });
  if (typeof value === "number") return document.createTextNode(formatNumber(value));
  if (typeof value !== "object") return document.createTextNode(String(value));
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) {
      const items = value.map((v) => (typeof v === "number" ? formatNumber(v) : String(v)));
      return document.createTextNode(value.length ? items.join(", ") : "none");
    }
    return h("ol", { className: "values" }, value.map((v) => h("li", {}, renderValue(v))));
  }
  const entries = Object.entries(value);
  const isFlat = (v) => Object.values(v).every((x) => x === null || typeof x !== "object");
  // Rows of flat objects (quality components: name -> raw, score) read best as a table.
  if (entries.length && entries.every(([, v]) => isPlainObject(v) && isFlat(v))) {
    const columns = [...new Set(entries.flatMap(([, v]) => Object.keys(v)))];
    return h(
      "div",
      { className: "table-wrap" },
      h(
        "table",
        { className: "values" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "" }), columns.map((c) => h("th", { scope: "col", text: c })))),
        h(
          "tbody",
          {},
          entries.map(([name, row]) =>
            h("tr", {}, h("th", { scope: "row", text: name }), columns.map((c) => h("td", {}, renderValue(row[c])))),
          ),
        ),
      ),
    );
  }
  // A flat object (a pose, a component's raw and score) reads best as pairs on one line.
  return h(
    "dl",
    { className: isFlat(value) ? "values inline" : "values" },
    entries.map(([k, v]) => h("div", {}, h("dt", { text: k }), h("dd", {}, renderValue(v)))),
  );
}

function measureKeys(face) {
  const keys = Object.keys(face).filter((k) => !k.endsWith("_b64") && !SHOWN_ELSEWHERE.includes(k));
  const middle = keys.filter((k) => !FIRST.includes(k) && !GEOMETRY.includes(k));
  return [...FIRST, ...middle].filter((k) => k in face);
}

function measureList(face, keys, className) {
  return h(
    "dl",
    { className },
    keys.map((key) => [
      h("dt", { text: LABELS[key] || key, title: TITLES[key] }),
      h("dd", { dataset: { key } }, renderValue(face[key])),
    ]),
  );
}

function faceCard(entry, crop, highlight) {
  const { face, accepted, index } = entry;
  const verdict = accepted ? "accepted" : "rejected";
  const reasons = Array.isArray(face.reasons) ? face.reasons : [];
  const image = h("img", {
    className: "crop",
    width: 112,
    height: 112,
    alt: `aligned face ${index}`,
  });
  const cropBox = h("div", { className: "crop-box" });
  if (crop) {
    Promise.resolve(crop)
      .then((url) => {
        if (!url) throw new Error("no crop");
        image.src = url;
        cropBox.append(image);
      })
      .catch(() => cropBox.append(h("span", { className: "na", text: "no aligned crop kept" })));
  } else {
    cropBox.append(h("span", { className: "na", text: "no aligned crop kept" }));
  }
  const card = h(
    "li",
    {
      className: `face-card ${verdict}`,
      tabindex: 0,
      dataset: { face: String(index), verdict },
      "aria-label": `face ${index}: ${verdict}${reasons.length ? ` (${reasons.join(", ")})` : ""}`,
    },
    h(
      "h4",
      {},
      h("span", { className: "badge", text: `#${index}` }),
      " ",
      h("span", { className: "verdict", text: verdict }),
      reasons.length ? h("span", { className: "reasons", text: `: ${reasons.join(", ")}` }) : null,
    ),
    cropBox,
    measureList(face, measureKeys(face), "measures"),
    h(
      "details",
      { className: "geometry" },
      h("summary", { text: "box, landmarks, id" }),
      measureList(face, GEOMETRY.filter((k) => k in face), "measures"),
    ),
  );
  for (const name of ["mouseenter", "focus"]) card.addEventListener(name, () => highlight(index, true));
  for (const name of ["mouseleave", "blur"]) card.addEventListener(name, () => highlight(index, false));
  return card;
}

function boxesLayer(faces, width, height, onPick, highlight) {
  const size = Math.max(14, Math.round(Math.max(width, height) / 40));
  return s(
    "svg",
    {
      className: "boxes",
      viewBox: `0 0 ${width} ${height}`,
      preserveAspectRatio: "none",
      "aria-hidden": "true",
    },
    faces.map(({ face, accepted, index }) => {
      const [x, y, w, hgt] = face.face_coordinate || [0, 0, 0, 0];
      const group = s(
        "g",
        { className: `box ${accepted ? "accepted" : "rejected"}`, dataset: { face: String(index) } },
        s("rect", { x, y, width: w, height: hgt }),
        s("text", { x, y: Math.max(size, y - size * 0.3), "font-size": size, text: `#${index}` }),
      );
      group.addEventListener("mouseenter", () => highlight(index, true));
      group.addEventListener("mouseleave", () => highlight(index, false));
      group.addEventListener("click", () => onPick(index));
      return group;
    }),
  );
}

/**
 * Render ``report``. Options: ``imageUrl`` (the picture; the marked JPEG of the report when
 * absent), ``cropUrl(face)`` (URL or promise of one; default the report's base64 crop).
 */
export function renderReport(report, options = {}) {
  const faces = facesOf(report);
  const accepted = faces.filter((f) => f.accepted).length;
  const root = h("div", { className: "report" });
  const highlight = (index, on) => {
    for (const node of root.querySelectorAll(`[data-face="${index}"]`)) {
      node.classList.toggle("active", on);
    }
  };
  const pick = (index) => {
    const card = root.querySelector(`.face-card[data-face="${index}"]`);
    if (card) {
      card.scrollIntoView({ block: "nearest" });
      card.focus();
    }
  };
  const total = report.face_total ?? faces.length;
  root.append(
    h("p", {
      className: "summary",
      text: `${total} face${total === 1 ? "" : "s"} found: ${accepted} accepted, ${faces.length - accepted} rejected`,
    }),
  );
  const url =
    options.imageUrl ||
    (report.mark_image_face_b64 ? `data:image/jpeg;base64,${report.mark_image_face_b64}` : null);
  if (url) {
    const img = h("img", { className: "picture", alt: options.alt || "the assessed image" });
    const stage = h("div", { className: "stage" }, img);
    const figure = h(
      "figure",
      {},
      stage,
      h("figcaption", {
        text: "Solid green boxes: accepted; dashed red boxes: rejected. Numbers match the faces below.",
      }),
    );
    img.addEventListener("load", () => {
      stage.append(boxesLayer(faces, img.naturalWidth, img.naturalHeight, pick, highlight));
    });
    img.addEventListener("error", () => {
      figure.replaceChildren(h("p", { className: "na", text: "this browser cannot show the picture" }));
    });
    img.src = url;
    root.append(figure);
  }
  const cropUrl =
    options.cropUrl ||
    ((face) => (face.face_align_images_b64 ? `data:image/png;base64,${face.face_align_images_b64}` : null));
  root.append(
    h(
      "ol",
      { className: "faces", "aria-label": "faces" },
      faces.map((entry) => faceCard(entry, cropUrl(entry.face, entry), highlight)),
    ),
  );
  return root;
}
