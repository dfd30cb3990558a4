// The filter builder: conditions on a field each, turned into the filters JSON the API takes (search and rules).
import { h, icon, nextId, replace } from "../dom.js";

const FIELDS = [
  ["category", "Category", "keyword"], ["brand", "Brand", "keyword"], ["currency", "Currency", "keyword"],
  ["price", "Price", "number"], ["in_stock", "In stock", "boolean"], ["attribute", "Attribute…", "attribute"],
];
const OPERATORS = {
  keyword: [["eq", "is"], ["in", "is one of"], ["nin", "is none of"]],
  number: [["gte", "≥"], ["lte", "≤"], ["gt", ">"], ["lt", "<"], ["eq", "="]],
  boolean: [["eq", "is"]],
  attribute: [["eq", "is"], ["in", "is one of"], ["nin", "is none of"], ["gte", "≥"], ["lte", "≤"], ["gt", ">"], ["lt", "<"]],
};
const PLAIN_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;

export function filterBuilder({ onChange } = {}) {
  const list = h("div", { class: "conditions" });
  const preview = h("pre", { class: "json-preview", "data-testid": "filters-preview", "aria-label": "The filters as JSON" });
  const problem = h("p", { class: "form-error", role: "alert" });
  const rows = [];

  // The preview follows every keystroke; a condition still being typed is left out of it, not an error yet.
  function changed() {
    try {
      preview.textContent = JSON.stringify(build({ partial: true }), null, 1).replace(/\n\s*/g, " ");
      problem.textContent = "";
    } catch (error) {
      problem.textContent = error.message;
    }
    if (onChange) onChange();
  }

  function addRow(initial = { field: "category" }) {
    const fieldSelect = h("select", { class: "input", "data-testid": "condition-field" }, FIELDS.map(([value, label]) => h("option", { value }, label)));
    fieldSelect.value = initial.field;
    const attrName = h("input", { class: "input", type: "text", placeholder: "colour", "aria-label": "Attribute name", "data-testid": "condition-attribute" });
    const opSelect = h("select", { class: "input", "data-testid": "condition-operator" });
    const valueBox = h("div");
    const remove = h("button", { class: "btn btn-ghost icon-btn", type: "button", "aria-label": "Remove this condition" }, icon("close"));
    const ids = { field: nextId("cond-field"), op: nextId("cond-op"), value: nextId("cond-value") };
    fieldSelect.id = ids.field;
    opSelect.id = ids.op;
    const row = { fieldSelect, attrName, opSelect, valueInput: null };

    function kind() {
      return FIELDS.find(([value]) => value === fieldSelect.value)[2];
    }
    function refreshOperators() {
      replace(opSelect, OPERATORS[kind()].map(([value, label]) => h("option", { value }, label)));
      refreshValue();
    }
    function refreshValue() {
      const k = kind();
      const input = k === "boolean"
        ? h("select", { class: "input" }, h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"))
        : h("input", { class: "input", type: k === "number" ? "number" : "text", step: "any", placeholder: ["in", "nin"].includes(opSelect.value) ? "a, b, c" : "value" });
      input.id = ids.value;
      input.setAttribute("data-testid", "condition-value");
      input.addEventListener("input", changed);
      input.addEventListener("change", changed);
      row.valueInput = input;
      replace(valueBox, h("div", { class: "field" }, h("label", { for: ids.value, class: "sr-only" }, "Value"), input));
      attrName.hidden = k !== "attribute";
      changed();
    }
    fieldSelect.addEventListener("change", refreshOperators);
    opSelect.addEventListener("change", () => { refreshValue(); });
    attrName.addEventListener("input", changed);
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      element.remove();
      changed();
    });
    const element = h("div", { class: "condition", "data-testid": "condition" },
      h("div", { class: "field" }, h("label", { for: ids.field, class: "small" }, "Field"), h("div", { class: "row", style: { flexWrap: "nowrap" } }, fieldSelect, attrName)),
      h("div", { class: "field" }, h("label", { for: ids.op, class: "small" }, "Condition"), opSelect),
      valueBox, remove);
    rows.push(row);
    list.append(element);
    refreshOperators();
    return row;
  }

  function build({ partial = false } = {}) {
    const filters = {};
    for (const row of rows) {
      const k = FIELDS.find(([value]) => value === row.fieldSelect.value)[2];
      let key = row.fieldSelect.value;
      const raw = row.valueInput.value.trim();
      if (partial && (raw === "" || (k === "attribute" && !row.attrName.value.trim()))) continue;
      if (k === "attribute") {
        const name = row.attrName.value.trim();
        if (!name) throw new Error("Name the attribute (for attributes.colour, type colour).");
        if (name.includes(".")) throw new Error("Attribute names have no dots.");
        key = `attributes.${name}`;
      }
      const op = row.opSelect.value;
      if (raw === "") throw new Error(`Give a value for ${key}.`);
      const typed = (text) => {
        if (k === "number") return Number(text);
        if (k === "boolean") return text === "true";
        if (k === "attribute" && PLAIN_NUMBER.test(text)) return Number(text);
        return text;
      };
      let value;
      if (op === "in" || op === "nin") {
        const items = raw.split(",").map((s) => s.trim()).filter(Boolean).map(typed);
        value = { [op]: items };
      } else if (op === "eq") {
        value = typed(raw);
      } else {
        const number = Number(raw);
        if (!Number.isFinite(number)) throw new Error(`${key}: ${op} takes a number.`);
        value = { [op]: number };
      }
      if (key in filters) {
        const both = [filters[key], value];
        if (both.every((v) => v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).every((o) => ["gte", "gt", "lte", "lt"].includes(o)))) {
          filters[key] = { ...filters[key], ...value };
          continue;
        }
        throw new Error(`One condition per field, except a range (≥ and ≤): ${key} is there twice.`);
      }
      filters[key] = value;
    }
    return filters;
  }

  const add = h("button", { class: "btn btn-sm", type: "button", "data-testid": "condition-add", onclick: () => addRow() }, "+ Add condition");
  const element = h("div", { class: "stack" }, list, h("div", { class: "row" }, add), problem, preview);
  addRow();
  return {
    element,
    value: build,
    reset() {
      rows.splice(0);
      list.replaceChildren();
      addRow();
    },
  };
}

export function describeFilters(filters) {
  const words = { gte: "≥", gt: ">", lte: "≤", lt: "<", in: "one of", nin: "none of" };
  return Object.entries(filters).flatMap(([key, spec]) => {
    if (Array.isArray(spec)) return [`${key} one of ${spec.join(", ")}`];
    if (spec && typeof spec === "object") {
      return Object.entries(spec).map(([op, v]) => `${key} ${words[op] || op} ${Array.isArray(v) ? v.join(", ") : v}`);
    }
    return [`${key} = ${spec}`];
  });
}
