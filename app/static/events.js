// The camera events view: the newest events with their verdict counts and crop thumbnails,
// filtered by verdict and source, refreshed while the view is open; one event in detail.

import { getBlobUrl, getJson } from "./api.js";
import { h, replace } from "./dom.js";
import { facesOf, renderValue, renderReport } from "./report.js";

const REFRESH_MS = 5000;
const PAGE = 30;
const THUMBS = 4;
const MAX_CACHED = 400;

function when(text) {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? String(text || "") : date.toLocaleString();
}

export function setupEvents(config, showError) {
  const form = document.getElementById("events-filter");
  const verdict = document.getElementById("filter-verdict");
  const source = document.getElementById("filter-source");
  const auto = document.getElementById("events-auto");
  const list = document.getElementById("events-list");
  const detail = document.getElementById("event-detail");
  const status = document.getElementById("events-status");
  const errorBox = document.getElementById("events-error");
  for (const value of config.verdicts) verdict.append(h("option", { value, text: value.replace("_", " ") }));
  for (const value of config.sources) source.append(h("option", { value, text: value }));

  const details = new Map(); // finished events only: they no longer change
  const blobs = new Map(); // API path -> object URL
  let selected = null;
  let timer = null;
  let active = false;
  let loading = false;

  function blobUrl(path) {
    if (blobs.size >= MAX_CACHED) {
      // A view left open for days must not hold every picture it ever showed. Images already
      // on the page keep their pixels when their URL is revoked.
      for (const entry of blobs.values()) entry.then((url) => URL.revokeObjectURL(url), () => {});
      blobs.clear();
      details.clear();
    }
    if (!blobs.has(path)) {
      const promise = getBlobUrl(path).catch((error) => {
        blobs.delete(path);
        throw error;
      });
      blobs.set(path, promise);
    }
    return blobs.get(path);
  }

  async function eventDetail(event) {
    if (details.has(event.id)) return details.get(event.id);
    const full = await getJson(`/events/${encodeURIComponent(event.id)}`);
    if (full.status !== "pending") details.set(event.id, full);
    return full;
  }

  const cropPath = (eventId, face) =>
    `/events/${encodeURIComponent(eventId)}/faces/${encodeURIComponent(face.face_id)}.png`;

  function thumbnails(event) {
    const box = h("div", { className: "thumbs" });
    if (event.status !== "done" || !event.faces_accepted) return box;
    eventDetail(event)
      .then((full) => {
        const faces = (full.reports || []).flatMap((r) => r.resp || []).slice(0, THUMBS);
        for (const face of faces) {
          const img = h("img", { className: "thumb", width: 56, height: 56, alt: "accepted face" });
          blobUrl(cropPath(event.id, face)).then((url) => {
            img.src = url;
          }, () => img.remove());
          box.append(img);
        }
      })
      .catch(() => {});
    return box;
  }

  function row(event) {
    const accepted = event.faces_accepted ?? "…";
    const rejected = event.faces_rejected ?? "…";
    const open = h(
      "button",
      {
        type: "button",
        className: "event-open",
        "aria-pressed": String(event.id === selected),
        onclick: () => select(event.id),
      },
      h("span", { className: "when", text: when(event.received_at) }),
      h("span", { className: `status ${event.status}`, text: event.status }),
    );
    return h(
      "li",
      { className: `event${event.id === selected ? " selected" : ""}`, dataset: { id: event.id } },
      open,
      h(
        "dl",
        { className: "event-facts" },
        h("dt", { text: "source" }),
        h("dd", { className: "source", text: event.source }),
        h("dt", { text: "device" }),
        h("dd", { className: "device", text: event.device_id ?? "unknown" }),
        h("dt", { text: "faces" }),
        h("dd", { className: "faces-count", text: `${accepted} accepted, ${rejected} rejected` }),
        h("dt", { text: "images" }),
        h("dd", { text: event.images ?? 0 }),
      ),
      thumbnails(event),
    );
  }

  let shownKey = null;
  let again = false;

  async function refresh() {
    if (loading) {
      again = true; // a filter changed while a page was on its way: ask once more after it
      return;
    }
    loading = true;
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (verdict.value) params.set("verdict", verdict.value);
    if (source.value) params.set("source", source.value);
    try {
      const page = await getJson(`/events?${params}`);
      errorBox.textContent = "";
      // Redraw only what changed: a list rebuilt every few seconds would steal the keyboard
      // focus and make screen readers announce the same page again and again.
      const key = JSON.stringify([params.toString(), page.events]);
      if (key !== shownKey) {
        shownKey = key;
        const focused = document.activeElement?.closest?.(".event")?.dataset.id;
        replace(list, page.events.map(row));
        if (focused) list.querySelector(`.event[data-id="${CSS.escape(focused)}"] .event-open`)?.focus();
        const count = page.events.length;
        status.textContent = count
          ? `${count} event${count === 1 ? "" : "s"}, newest first`
          : "No camera events match.";
      }
      if (selected && !details.has(selected)) await showDetail(selected, false);
    } catch (error) {
      shownKey = null;
      errorBox.textContent = `The events could not be listed: ${error.describe()}`;
      showError(error);
    } finally {
      loading = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  function imageView(full, file, report) {
    const title = `image ${file.index + 1}: ${file.role}${file.name ? ` (${file.name})` : ""}`;
    const section = h("section", { className: "event-image" }, h("h4", { text: title }));
    if (!report) {
      section.append(h("p", { className: "na", text: "not assessed yet" }));
    } else if (report.error) {
      section.append(h("p", { className: "error", text: `${report.error.message} (${report.error.code})` }));
    } else {
      const imagePath = `/events/${encodeURIComponent(full.id)}/images/${file.index}`;
      const holder = h("div", {}, h("p", { className: "na", text: "loading the image…" }));
      blobUrl(imagePath).then(
        (url) => {
          replace(holder, renderReport(report, {
            imageUrl: url,
            alt: title,
            cropUrl: (face, entry) => (entry.accepted ? blobUrl(cropPath(full.id, face)) : null),
          }));
        },
        (error) => replace(holder, h("p", { className: "error", text: error.describe() })),
      );
      section.append(holder);
    }
    return section;
  }

  async function showDetail(id, focus) {
    let full;
    try {
      full = await eventDetail({ id });
    } catch (error) {
      replace(detail, h("p", { className: "error", role: "alert", text: `The event could not be read: ${error.describe()}` }));
      return;
    }
    if (selected !== id) return;
    const heading = h("h3", { tabindex: -1, text: `Event from ${full.device_id ?? "an unknown device"}` });
    const reports = new Map((full.reports || []).map((r, i) => [r.index ?? i, r]));
    const facts = {
      received: when(full.received_at),
      status: full.status,
      source: full.source,
      device: full.device_id ?? "unknown",
      "event time": full.event_time ?? "unknown",
      faces: `${full.faces_accepted ?? "…"} accepted, ${full.faces_rejected ?? "…"} rejected`,
    };
    replace(
      detail,
      heading,
      renderValue(facts),
      h("details", {}, h("summary", { text: "device metadata" }), renderValue(full.metadata || {})),
      (full.image_files || []).map((file) => imageView(full, file, reports.get(file.index))),
    );
    if (!(full.image_files || []).length) detail.append(h("p", { className: "na", text: "this event has no images" }));
    if (focus) heading.focus();
  }

  function select(id) {
    selected = id;
    for (const item of list.children) {
      const on = item.dataset.id === id;
      item.classList.toggle("selected", on);
      item.querySelector(".event-open").setAttribute("aria-pressed", String(on));
    }
    showDetail(id, true);
  }

  function schedule() {
    clearInterval(timer);
    timer = null;
    if (active && auto.checked) {
      timer = setInterval(() => {
        if (!document.hidden) refresh();
      }, REFRESH_MS);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  verdict.addEventListener("change", refresh);
  source.addEventListener("change", refresh);
  auto.addEventListener("change", schedule);

  return {
    show() {
      active = true;
      refresh();
      schedule();
    },
    hide() {
      active = false;
      schedule();
    },
  };
}
