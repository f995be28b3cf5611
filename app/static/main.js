// The page's entry point: the token field, the two views and the tabs between them.

import { getJson, getToken, setToken } from "./api.js";
import { setupEvents } from "./events.js";
import { setupUpload } from "./upload.js";

const config = JSON.parse(document.getElementById("app").dataset.config);
const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token");
const tokenStatus = document.getElementById("token-status");

function tokenProblem(error) {
  if (error.status === 401 || error.status === 403) {
    tokenStatus.textContent = `Token refused: ${error.describe()}`;
    tokenStatus.className = "status error";
  }
}

async function checkToken() {
  setToken(tokenInput.value.trim());
  if (!getToken()) {
    tokenStatus.textContent = "No token: enter the service's API token.";
    tokenStatus.className = "status error";
    return;
  }
  try {
    await getJson("/events?limit=1");
    tokenStatus.textContent = "Token accepted.";
    tokenStatus.className = "status ok";
  } catch (error) {
    if (error.status === 401 || error.status === 403) tokenProblem(error);
    else {
      tokenStatus.textContent = `Token kept for this tab (${error.describe()}).`;
      tokenStatus.className = "status";
    }
  }
}

tokenInput.value = getToken();
tokenInput.addEventListener("input", () => setToken(tokenInput.value.trim()));
tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  checkToken();
});
document.getElementById("token-forget").addEventListener("click", () => {
  setToken("");
  tokenInput.value = "";
  tokenStatus.textContent = "Token forgotten.";
  tokenStatus.className = "status";
});

setupUpload(config, tokenProblem);
const events = setupEvents(config, tokenProblem);

const tabs = [...document.querySelectorAll('[role="tab"]')];

function showTab(tab, focus) {
  for (const other of tabs) {
    const on = other === tab;
    other.setAttribute("aria-selected", String(on));
    other.tabIndex = on ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  if (tab.id === "tab-events") events.show();
  else events.hide();
}

for (const tab of tabs) {
  tab.addEventListener("click", () => showTab(tab, false));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    showTab(tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length], true);
  });
}
