// Characters: the gallery (search by name and tag), card import by drop or file picker, the editor
// (every card field, lorebook entries as a list), export as PNG or JSON, delete with a confirmation.

import { download, getJson, request } from "./api.js";
import { t } from "./i18n.js";
import { $, avatar, clearBanner, confirmDelete, el, showError } from "./ui.js";

const TEXT_FIELDS = [
  "name",
  "description",
  "personality",
  "scenario",
  "first_mes",
  "mes_example",
  "system_prompt",
  "post_history_instructions",
  "creator_notes",
  "creator",
  "character_version",
];

let editing = null; // the character being edited (null: a new one)

function cardFor(character) {
  const open = () => (location.hash = `#/chat/${character.id}`);
  const tags = el("p", { className: "tags" }, ...character.tags.map((tag) => el("span", { className: "tag", textContent: tag })));
  const actions = el(
    "div",
    { className: "card-actions" },
    el("button", { type: "button", textContent: t("card.chat"), onclick: open }),
    character.mine ? el("button", { type: "button", textContent: t("card.edit"), onclick: () => (location.hash = `#/edit/${character.id}`) }) : null,
    el("button", {
      type: "button",
      textContent: "PNG",
      title: t("card.exportPng"),
      onclick: () => download(`/characters/${character.id}/export?format=png`, `${character.name}.png`).catch(showError),
    }),
    el("button", {
      type: "button",
      textContent: "JSON",
      title: t("card.exportJson"),
      onclick: () => download(`/characters/${character.id}/export?format=json`, `${character.name}.json`).catch(showError),
    }),
    character.mine ? el("button", { type: "button", className: "danger", textContent: t("card.delete"), onclick: () => remove(character) }) : null,
  );
  const picture = el("button", { type: "button", className: "card-picture", onclick: open, attrs: { "aria-label": t("card.chatWith", { name: character.name }) } }, avatar(character));
  return el(
    "li",
    { className: "card", dataset: { id: character.id } },
    picture,
    el("h3", { className: "card-name", textContent: character.name }),
    tags,
    actions,
  );
}

export async function showGallery() {
  const params = new URLSearchParams({ page_size: "100" });
  const name = $("#char-search").value.trim();
  const tag = $("#char-tag").value.trim();
  if (name) params.set("q", name);
  if (tag) params.set("tag", tag);
  try {
    const page = await getJson(`/characters?${params}`);
    $("#gallery").replaceChildren(...page.items.map(cardFor));
    $("#gallery-empty").hidden = page.items.length > 0;
  } catch (error) {
    showError(error);
  }
}

async function remove(character) {
  if (!(await confirmDelete(t("card.confirmDelete", { name: character.name })))) return;
  try {
    await request(`/characters/${character.id}`, { method: "DELETE" });
    await showGallery();
  } catch (error) {
    showError(error);
  }
}

function contentType(file) {
  if (file.type) return file.type;
  return file.name.toLowerCase().endsWith(".json") ? "application/json" : "image/png";
}

async function importCard(file) {
  const status = $("#import-status");
  status.className = "status";
  status.textContent = t("import.running", { file: file.name });
  try {
    const response = await request("/characters/import", {
      method: "POST",
      body: file,
      extraHeaders: { "Content-Type": contentType(file) },
    });
    const character = await response.json();
    status.textContent = t("import.done", { name: character.name });
    await showGallery();
  } catch (error) {
    status.className = "status error";
    status.textContent = t("import.failed", { file: file.name, message: error.message });
  }
}

function wireDropZone() {
  const zone = $("#drop-zone");
  const picker = $("#card-file");
  zone.addEventListener("click", (event) => {
    if (event.target !== picker) picker.click();
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      picker.click();
    }
  });
  picker.addEventListener("change", async () => {
    for (const file of picker.files) await importCard(file);
    picker.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    for (const file of event.dataTransfer.files) await importCard(file);
  });
}

// --- the editor -------------------------------------------------------------------------------

function removable(item) {
  return el("button", { type: "button", className: "small", textContent: t("field.remove"), onclick: () => item.remove() });
}

function greetingItem(text = "") {
  const item = el("li", {}, el("textarea", { rows: 2, value: text, attrs: { "aria-label": t("field.greeting") } }));
  item.append(removable(item));
  return item;
}

// A lorebook entry; its other fields (ids, positions, extensions) ride along unchanged.
function loreItem(entry = { keys: [], content: "", enabled: true, insertion_order: 0, extensions: {} }) {
  const item = el(
    "li",
    { className: "lore" },
    el("label", {}, `${t("field.loreKeys")} `, el("input", { className: "lore-keys", value: (entry.keys || []).join(", ") })),
    el("label", {}, `${t("field.loreContent")} `, el("textarea", { className: "lore-content", rows: 2, value: entry.content || "" })),
    el("label", { className: "inline" }, el("input", { type: "checkbox", className: "lore-enabled", checked: entry.enabled !== false }), ` ${t("field.loreEnabled")}`),
  );
  item.entry = entry;
  item.append(removable(item));
  return item;
}

const splitList = (text) =>
  text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean);

function formCard(form) {
  const card = {};
  for (const field of TEXT_FIELDS) card[field] = form.elements[field].value;
  card.tags = splitList(form.elements.tags.value);
  card.visibility = form.elements.visibility.value;
  card.alternate_greetings = [...$("#greetings-list").querySelectorAll("textarea")].map((area) => area.value);
  const entries = [...$("#lore-list").children].map((item) => ({
    ...item.entry,
    keys: splitList(item.querySelector(".lore-keys").value),
    content: item.querySelector(".lore-content").value,
    enabled: item.querySelector(".lore-enabled").checked,
  }));
  const book = editing?.character_book;
  card.character_book = book || entries.length ? { extensions: {}, ...(book || {}), entries } : null;
  const extensions = form.elements.extensions.value.trim();
  card.extensions = extensions ? JSON.parse(extensions) : {};
  return card;
}

export async function showEditor(characterId) {
  const form = $("#editor");
  form.reset();
  $("#editor-status").textContent = "";
  editing = null;
  if (characterId) {
    try {
      editing = await getJson(`/characters/${characterId}`);
    } catch (error) {
      showError(error);
      return;
    }
  }
  const character = editing || { tags: [], alternate_greetings: [], extensions: {}, character_book: null };
  $("#editor-title").textContent = editing ? t("editor.edit", { name: editing.name }) : t("editor.new");
  for (const field of TEXT_FIELDS) form.elements[field].value = character[field] || "";
  form.elements.tags.value = (character.tags || []).join(", ");
  form.elements.visibility.value = character.visibility || "private";
  form.elements.extensions.value = JSON.stringify(character.extensions || {});
  $("#greetings-list").replaceChildren(...(character.alternate_greetings || []).map(greetingItem));
  $("#lore-list").replaceChildren(...(character.character_book?.entries || []).map(loreItem));
  form.elements.name.focus();
}

async function save(event) {
  event.preventDefault();
  const status = $("#editor-status");
  let card;
  try {
    card = formCard(event.target);
  } catch {
    status.className = "status error";
    status.textContent = t("editor.badExtensions");
    return;
  }
  try {
    const path = editing ? `/characters/${editing.id}` : "/characters";
    await request(path, { method: editing ? "PUT" : "POST", json: card });
    clearBanner();
    location.hash = "#/characters";
  } catch (error) {
    status.className = "status error";
    status.textContent = error.explanation;
  }
}

export function initCharacters() {
  wireDropZone();
  let timer = null;
  const search = () => {
    clearTimeout(timer);
    timer = setTimeout(showGallery, 200);
  };
  $("#char-search").addEventListener("input", search);
  $("#char-tag").addEventListener("input", search);
  $("#char-new").addEventListener("click", () => (location.hash = "#/new"));
  $("#greeting-add").addEventListener("click", () => $("#greetings-list").append(greetingItem()));
  $("#lore-add").addEventListener("click", () => $("#lore-list").append(loreItem()));
  $("#editor").addEventListener("submit", save);
  $("#editor-cancel").addEventListener("click", () => (location.hash = "#/characters"));
}
