// Browse and search: keywords, filters, sort, and infinite paging.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { consistencyToken, invalid, listings } from "../api";
import { empty, failure, isAbort, listingCard, loading, whenVisible } from "../components";
import { h, icon, icons, replace } from "../dom";
import { banner, clearProblems, field, showProblem } from "../forms";
import { conditionLabels, currencies, defaultCurrency, parseAmount } from "../format";
import { Condition, SearchSort, type SearchListingsRequestSchema } from "../gen/swapmeet/v1/listing_pb";
import { setQuery, type Route } from "../router";

// "Best match" leaves the order to the service: by relevance for keywords,
// newest first without.
const sorts: [string, SearchSort, string][] = [
  ["best", SearchSort.UNSPECIFIED, "Best match"],
  ["newest", SearchSort.NEWEST, "Newest first"],
  ["price-asc", SearchSort.PRICE_ASC, "Price: low to high"],
  ["price-desc", SearchSort.PRICE_DESC, "Price: high to low"],
];

const pageSize = 12;

export function browsePage({ query, signal }: Route): Node {
  const q = h("input", { type: "search", name: "q", placeholder: "Search for cameras, bikes, lamps…", value: query.get("q") ?? "", autocomplete: "off", "aria-label": "Search" });
  // The categories that have listings for sale, as the service counts them;
  // the one in the address is offered before they arrive.
  const chosen = query.get("category") ?? "";
  const category = h("select", { name: "category" }, h("option", { value: "" }, "All categories"), chosen ? h("option", { value: chosen, selected: true }, chosen.replace(/-/g, " ")) : []);
  listings
    .listCategories({ consistencyToken: consistencyToken() }, { signal })
    .then((res) => {
      const current = category.value;
      const names = res.categories.map((c) => c.name);
      replace(
        category,
        h("option", { value: "" }, "All categories"),
        res.categories.map((c) => h("option", { value: c.name, selected: current === c.name }, `${c.name.replace(/-/g, " ")} (${c.availableCount})`)),
        current && !names.includes(current) ? h("option", { value: current, selected: true }, current.replace(/-/g, " ")) : null,
      );
    })
    .catch(() => {
      // The filter still works with what is typed in the address.
    });
  const condition = h(
    "select",
    { name: "condition" },
    h("option", { value: "" }, "Any condition"),
    Object.entries(conditionLabels).map(([v, label]) => h("option", { value: Condition[Number(v)], selected: query.get("condition") === Condition[Number(v)] }, label)),
  );
  const currency = h("select", { name: "currency", class: "currency" }, currencies.map((c) => h("option", { value: c, selected: (query.get("currency") ?? defaultCurrency) === c }, c)));
  const min = h("input", { name: "min", inputMode: "decimal", placeholder: "Min", value: query.get("min") ?? "", class: "price-input" });
  const max = h("input", { name: "max", inputMode: "decimal", placeholder: "Max", value: query.get("max") ?? "", class: "price-input" });
  const sort = h("select", { name: "sort" }, sorts.map(([key, , label]) => h("option", { value: key, selected: (query.get("sort") ?? "best") === key }, label)));

  const heading = h("h2", { class: "section-title" });
  const results = h("div", { class: "grid", id: "results" });
  const status = h("div", { class: "results-status" });
  const sentinel = h("div", { class: "sentinel" });
  const more = h("button", { class: "btn btn-ghost", type: "button", hidden: true }, "Load more");

  const form = h(
    "form",
    { class: "search", role: "search" },
    h("div", { class: "search-bar field", dataset: { field: "query", label: "Search" } }, icon(icons.search, 20), q, h("button", { class: "btn btn-primary", type: "submit" }, "Search")),
    h(
      "div",
      { class: "filters" },
      field("Category", "category", category),
      field("Condition", "condition", condition),
      field("Price", "min_price", h("div", { class: "price-range" }, min, h("span", { class: "muted" }, "–"), max, currency), { aliases: ["max_price"] }),
      field("Sort by", "sort", sort),
    ),
    banner(),
  );

  let nextToken = "";
  let loadingMore = false;
  let generation = 0;

  function request(pageToken: string): MessageInitShape<typeof SearchListingsRequestSchema> {
    const cur = currency.value;
    const lo = parseAmount(min.value, cur);
    const hi = parseAmount(max.value, cur);
    if (lo === null) throw invalid("min_price", "must be an amount like 25 or 19.99");
    if (hi === null) throw invalid("max_price", "must be an amount like 25 or 19.99");
    return {
      query: q.value.trim(),
      category: category.value,
      condition: condition.value ? Condition[condition.value as keyof typeof Condition] : Condition.UNSPECIFIED,
      minPrice: lo !== undefined ? { currencyCode: cur, amountMinor: lo } : undefined,
      maxPrice: hi !== undefined ? { currencyCode: cur, amountMinor: hi } : undefined,
      sort: sorts.find(([k]) => k === sort.value)?.[1] ?? SearchSort.UNSPECIFIED,
      pageSize,
      pageToken,
      consistencyToken: consistencyToken(),
    };
  }

  async function load(reset: boolean): Promise<void> {
    if (!reset && (loadingMore || !nextToken)) return;
    const gen = reset ? ++generation : generation;
    loadingMore = true;
    more.hidden = true;
    if (reset) {
      heading.textContent = q.value.trim() || category.value || condition.value || min.value || max.value ? "Search results" : "Fresh finds";
      clearProblems(form);
      results.replaceChildren();
      status.replaceChildren(loading("Searching…"));
    } else {
      status.replaceChildren(loading("Loading more…"));
    }
    let req: MessageInitShape<typeof SearchListingsRequestSchema> = {};
    try {
      req = request(reset ? "" : nextToken);
      const res = await listings.searchListings(req, { signal });
      if (gen !== generation) return; // a newer search started meanwhile
      results.append(...res.listings.map(listingCard));
      nextToken = res.nextPageToken;
      status.replaceChildren();
      if (results.childElementCount === 0) {
        status.replaceChildren(empty("No listings match", req.query ? `Nothing for “${req.query}” with these filters yet.` : "Nothing is for sale with these filters yet.", h("a", { class: "btn btn-primary", href: "/sell" }, "Sell an item")));
      } else {
        results.dataset.count = String(results.childElementCount);
      }
      more.hidden = !nextToken;
      if (!more.hidden) recheck(); // still at the end of the page: the next one too
    } catch (err) {
      if (isAbort(err) || gen !== generation) return;
      status.replaceChildren();
      const p = showProblem(form, err);
      if (p.fields.size === 0) status.replaceChildren(failure(err, () => void load(reset)));
    } finally {
      if (gen === generation) loadingMore = false;
    }
  }

  function search(): void {
    const params = new URLSearchParams();
    const set = (k: string, v: string) => v && params.set(k, v);
    set("q", q.value.trim());
    set("category", category.value);
    set("condition", condition.value);
    set("min", min.value.trim());
    set("max", max.value.trim());
    if (min.value || max.value) set("currency", currency.value);
    if (sort.value !== "best") set("sort", sort.value);
    setQuery(params);
    nextToken = "";
    void load(true);
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  for (const s of [category, condition, sort, currency]) s.addEventListener("change", search);
  more.addEventListener("click", () => void load(false));
  const recheck = whenVisible(sentinel, signal, () => void load(false));
  void load(true);


  return h(
    "div",
    { class: "page page-browse" },
    h("section", { class: "hero" }, h("h1", null, "Buy and sell second-hand, nearby."), h("p", null, "Good things deserve a second home. Find one, or list yours in a minute."), form),
    heading,
    results,
    status,
    h("div", { class: "more" }, more),
    sentinel,
  );
}
