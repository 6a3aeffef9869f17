// Small DOM helpers: elements from a tag, attributes and children; tables from rows; empty states.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") {
      // Through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
      for (const [property, setting] of Object.entries(value)) node.style.setProperty(property, setting);
    }
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function empty(message, kind = "empty") {
  return el("p", { class: kind === "error" ? "state state-error" : "state", role: kind === "error" ? "alert" : null }, message);
}

// A table: columns are {label, cell(row) -> node|string, class?, numeric?}; rows any values.
export function table(columns, rows, { caption, rowClass, key } = {}) {
  const head = el("tr", {}, columns.map((column) =>
    el("th", { scope: "col", class: columnClass(column), title: column.title }, column.label)));
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr", { class: rowClass ? rowClass(row) : null });
    if (key) tr.dataset.key = key(row);
    for (const column of columns) {
      tr.append(el("td", { class: columnClass(column) }, column.cell(row)));
    }
    body.append(tr);
  }
  return el("div", { class: "table-wrap" },
    el("table", {}, caption ? el("caption", { class: "visually-hidden" }, caption) : null,
      el("thead", {}, head), body));
}

function columnClass(column) {
  return [column.numeric ? "num" : "", column.class || ""].join(" ").trim() || null;
}

export function definitionList(pairs) {
  return el("dl", { class: "facts" }, pairs.map(([term, value, cls]) =>
    el("div", { class: cls || null }, el("dt", {}, term), el("dd", {}, value))));
}

export function badge(text, tone) {
  return el("span", { class: `badge badge-${tone}` }, text);
}
