// A listing's fields, as "Sell an item" and "Edit listing" both show them:
// title, description, category (offered from the categories that exist,
// or a new one), condition, price and details. Each field can be read and
// set on its own, in a form that compares equal when the value is the same,
// so that an edit can name only what changed (its update mask) and be
// redone on a newer version of the listing.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { consistencyToken, invalid, listings } from "./api";
import { h, icon, icons } from "./dom";
import { field } from "./forms";
import { amountInput, conditionLabels, currencies, defaultCurrency, formatMoney, parseAmount } from "./format";
import type { MoneySchema } from "./gen/swapmeet/v1/common_pb";
import { Condition, type Listing } from "./gen/swapmeet/v1/listing_pb";

export type FieldName = "title" | "description" | "category" | "condition" | "price" | "attributes";
export const fieldNames: FieldName[] = ["title", "description", "category", "condition", "price", "attributes"];

export const fieldLabels: Record<FieldName, string> = {
  title: "Title",
  description: "Description",
  category: "Category",
  condition: "Condition",
  price: "Price",
  attributes: "Details",
};

/** A field's value in comparable form: equal strings, equal values. */
export type Values = Record<FieldName, string>;

export interface ListingInput {
  title: string;
  description: string;
  category: string;
  condition: Condition;
  price?: MessageInitShape<typeof MoneySchema>;
  attributes: Record<string, string>;
}

// What the API accepts as a category (CreateListingRequest's limits).
const categoryPattern = /^[a-z0-9-]{1,40}$/;

/** A listing's values as the form compares them. */
export function valuesOf(l: Listing): Values {
  return {
    title: l.title,
    description: l.description,
    category: l.category,
    condition: l.condition ? Condition[l.condition] : "",
    price: l.price ? `${l.price.currencyCode} ${l.price.amountMinor}` : "",
    attributes: attrKey(l.attributes),
  };
}

function attrKey(a: Record<string, string>): string {
  return JSON.stringify(Object.entries(a).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
}

/** A value of l for people: "€450.00", "Like new", "brand: Leica, size: M". */
export function describe(name: FieldName, l: Listing): string {
  switch (name) {
    case "price":
      return formatMoney(l.price);
    case "condition":
      return conditionLabels[l.condition] ?? "not set";
    case "attributes": {
      const e = Object.entries(l.attributes).sort(([x], [y]) => x.localeCompare(y));
      return e.length ? e.map(([k, v]) => `${k}: ${v}`).join(", ") : "none";
    }
    case "description":
      return l.description ? `“${l.description.length > 80 ? `${l.description.slice(0, 80)}…` : l.description}”` : "empty";
    default:
      return `“${l[name]}”`;
  }
}

export interface ListingFields {
  /** The fields, to put in a form. */
  fields: HTMLElement[];
  /** The values as typed, comparable with valuesOf. */
  values(): Values;
  /** The request fields; throws a field error for a malformed price or category. */
  input(): ListingInput;
  /** Sets the named fields (all by default) to l's values. */
  fill(l: Listing, names?: FieldName[]): void;
  /** Makes every control read-only or not (a listing that cannot be edited). */
  disable(on: boolean): void;
}

/** The listing fields; categories are offered from ListCategories. */
export function listingFields(signal: AbortSignal): ListingFields {
  const title = h("input", { name: "title", maxLength: 140, placeholder: "e.g. Leica M3 rangefinder camera" });
  const description = h("textarea", { name: "description", rows: 5, placeholder: "What is it, what shape is it in, what comes with it?" });
  const category = h("input", { name: "category", list: "categories", placeholder: "e.g. cameras", autocomplete: "off", autocapitalize: "none", spellcheck: false });
  const condition = h("select", { name: "condition" }, h("option", { value: "" }, "Choose…"), Object.entries(conditionLabels).map(([v, label]) => h("option", { value: Condition[Number(v)] }, label)));
  const amount = h("input", { name: "price", inputMode: "decimal", placeholder: "0.00", class: "price-input", "aria-label": "Price amount" });
  const currency = h("select", { name: "currency", class: "currency", "aria-label": "Currency" }, currencies.map((c) => h("option", { value: c, selected: c === defaultCurrency }, c)));

  const attrRows = h("div", { class: "attr-rows" });
  function addAttr(k = "", v = ""): void {
    const row = h(
      "div",
      { class: "attr-row" },
      h("input", { class: "attr-key", placeholder: "Detail, e.g. brand", value: k, "aria-label": "Detail name" }),
      h("input", { class: "attr-value", placeholder: "Value, e.g. Leica", value: v, "aria-label": "Detail value" }),
      h("button", { type: "button", class: "icon-btn", "aria-label": "Remove detail", onClick: () => row.remove() }, icon(icons.x)),
    );
    attrRows.append(row);
  }
  addAttr();
  const addDetail = h("button", { type: "button", class: "btn btn-ghost btn-small", onClick: () => addAttr() }, icon(icons.plus), "Add a detail");

  function attributes(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const row of Array.from(attrRows.children)) {
      const k = (row.querySelector(".attr-key") as HTMLInputElement).value.trim();
      const v = (row.querySelector(".attr-value") as HTMLInputElement).value.trim();
      if (k || v) out[k] = v;
    }
    return out;
  }

  function values(): Values {
    const minor = parseAmount(amount.value, currency.value);
    return {
      title: title.value.trim(),
      description: description.value.trim(),
      category: category.value.trim(),
      condition: condition.value,
      // A malformed amount differs from every price.
      price: minor === undefined ? "" : minor === null ? `${currency.value} ?${amount.value}` : `${currency.value} ${minor}`,
      attributes: attrKey(attributes()),
    };
  }

  function input(): ListingInput {
    const cur = currency.value;
    const minor = parseAmount(amount.value, cur);
    if (minor === null) throw invalid("price.amount_minor", "must be an amount like 25 or 19.99");
    const cat = category.value.trim();
    if (cat && !categoryPattern.test(cat)) throw invalid("category", "must be lower case, with letters, digits and “-” only, e.g. board-games (at most 40 characters)");
    return {
      title: title.value.trim(),
      description: description.value.trim(),
      category: cat,
      condition: condition.value ? Condition[condition.value as keyof typeof Condition] : Condition.UNSPECIFIED,
      price: minor === undefined ? undefined : { currencyCode: cur, amountMinor: minor },
      attributes: attributes(),
    };
  }

  function fill(l: Listing, names: FieldName[] = fieldNames): void {
    for (const n of names) {
      switch (n) {
        case "title":
          title.value = l.title;
          break;
        case "description":
          description.value = l.description;
          break;
        case "category":
          category.value = l.category;
          break;
        case "condition":
          condition.value = l.condition ? Condition[l.condition] : "";
          break;
        case "price":
          if (l.price && !currencies.includes(l.price.currencyCode)) currency.append(h("option", { value: l.price.currencyCode }, l.price.currencyCode));
          currency.value = l.price?.currencyCode ?? defaultCurrency;
          amount.value = amountInput(l.price);
          break;
        case "attributes":
          attrRows.replaceChildren();
          for (const [k, v] of Object.entries(l.attributes).sort(([x], [y]) => x.localeCompare(y))) addAttr(k, v);
          if (!attrRows.childElementCount) addAttr();
          break;
      }
    }
  }

  const all = () => [title, description, category, condition, amount, currency, addDetail, ...Array.from(attrRows.querySelectorAll<HTMLInputElement | HTMLButtonElement>("input, button"))];

  return {
    fields: [
      field("Title", "title", title),
      field("Description", "description", description, { hint: "Up to 5,000 characters." }),
      h("div", { class: "row" }, field("Category", "category", [category, categoryList(signal)], { hint: "Pick one, or type a new one: lower case, e.g. board-games." }), field("Condition", "condition", condition)),
      field("Price", "price", h("div", { class: "price-range" }, amount, currency)),
      field("Details", "attributes", [attrRows, addDetail], { hint: "Brand, size, model… whatever a buyer would ask." }),
    ],
    values,
    input,
    fill,
    disable: (on) => all().forEach((el) => (el.disabled = on)),
  };
}

/**
 * The categories that exist (ListCategories: those with listings for sale),
 * as suggestions for the category field, which takes a new one too.
 */
function categoryList(signal: AbortSignal): HTMLDataListElement {
  const list = h("datalist", { id: "categories" });
  listings
    .listCategories({ consistencyToken: consistencyToken() }, { signal })
    .then((res) => list.replaceChildren(...res.categories.map((c) => h("option", { value: c.name }, `${c.name.replace(/-/g, " ")} (${c.availableCount} for sale)`))))
    .catch(() => {
      // Only suggestions: any category may be typed.
    });
  return list;
}

/**
 * Reads a listing until the read side has a state newer than l's (a
 * higher version, or another status): after a refused write, the write
 * that won may not have reached it yet. Returns the newest read, newer or
 * not once the deadline has passed.
 */
export async function readNewer(l: Listing, signal: AbortSignal, deadlineMs = 8_000): Promise<Listing | undefined> {
  const deadline = Date.now() + deadlineMs;
  let delay = 150;
  for (;;) {
    const res = await listings.getListing({ listingId: l.listingId }, { signal });
    if (!res.listing || isNewer(res.listing, l) || Date.now() + delay > deadline) return res.listing;
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 1_000);
  }
}

export function isNewer(a: Listing, than: Listing): boolean {
  return a.version > than.version || (a.version === than.version && a.status !== than.status);
}
