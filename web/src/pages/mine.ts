// "My listings": everything the user has listed, newest first, whatever its
// status (ListMyListings, private to them: withdrawn listings show only
// here), with a status filter; the next page loads as the user scrolls, or
// with "Load more". Read with the tab's last write, so a listing just
// edited or withdrawn shows as it is now.

import { consistencyToken, listings, session } from "../api";
import { empty, failure, isAbort, listingCard, loading, whenVisible } from "../components";
import { h, icon, icons } from "../dom";
import { listingStatusLabels } from "../format";
import { ListingStatus } from "../gen/swapmeet/v1/listing_pb";
import { setQuery, type Route } from "../router";

const pageSize = 12;
const statuses = [ListingStatus.AVAILABLE, ListingStatus.SOLD, ListingStatus.WITHDRAWN];

export function myListingsPage({ query, signal }: Route): Node {
  const heading = h("h1", { tabindex: -1 }, "My listings");
  if (!session()) {
    return h(
      "div",
      { class: "page page-auth" },
      h("div", { class: "auth-card card" }, heading, h("p", { class: "muted" }, "Sign in to see and manage what you sell."), h("a", { class: "btn btn-primary btn-block", href: "/signin?next=/me/listings" }, "Sign in")),
    );
  }
  const filter = h(
    "select",
    { name: "status", "aria-label": "Status" },
    h("option", { value: "" }, "All statuses"),
    statuses.map((s) => h("option", { value: ListingStatus[s], selected: query.get("status") === ListingStatus[s] }, listingStatusLabels[s])),
  );
  const results = h("div", { class: "grid", id: "my-listings" });
  const status = h("div", { class: "results-status" });
  const more = h("button", { class: "btn btn-ghost", type: "button", hidden: true, id: "more-listings" }, "Load more");
  const sentinel = h("div", { class: "sentinel" });
  const withdrawn = query.get("withdrawn");

  let next = "";
  let reading = false;
  let generation = 0;

  async function load(first: boolean): Promise<void> {
    if (!first && (reading || !next)) return;
    const gen = first ? ++generation : generation;
    reading = true;
    more.hidden = true;
    if (first) results.replaceChildren();
    status.replaceChildren(loading(first ? "Loading your listings…" : "Loading more…"));
    try {
      const wanted = filter.value ? ListingStatus[filter.value as keyof typeof ListingStatus] : ListingStatus.UNSPECIFIED;
      const res = await listings.listMyListings({ status: wanted, pageSize, pageToken: first ? "" : next, consistencyToken: consistencyToken() }, { signal });
      if (gen !== generation) return;
      results.append(...res.listings.map(listingCard));
      results.dataset.count = String(results.childElementCount);
      next = res.nextPageToken;
      status.replaceChildren();
      if (!results.childElementCount) {
        status.append(
          filter.value
            ? empty(`No ${listingStatusLabels[wanted]?.toLowerCase()} listings`, "Choose another status to see the rest.")
            : empty("You have not listed anything yet", "What you list shows up here, sold and withdrawn ones too.", h("a", { class: "btn btn-primary", href: "/sell" }, "Sell an item")),
        );
      }
      more.hidden = !next;
      if (!more.hidden) recheck(); // still at the end of the page: the next one too
    } catch (err) {
      if (isAbort(err) || gen !== generation) return;
      status.replaceChildren(failure(err, () => void load(first)));
    } finally {
      if (gen === generation) reading = false;
    }
  }

  filter.addEventListener("change", () => {
    setQuery(new URLSearchParams(filter.value ? { status: filter.value } : {}));
    next = "";
    void load(true);
  });
  more.addEventListener("click", () => void load(false));
  const recheck = whenVisible(sentinel, signal, () => void load(false));
  void load(true);

  return h(
    "div",
    { class: "page page-mine" },
    h("div", { class: "page-head" }, h("div", null, heading, h("p", { class: "muted" }, "Everything you have listed, newest first.")), h("div", { class: "page-head-actions" }, filter, h("a", { class: "btn btn-primary", href: "/sell" }, icon(icons.plus, 16), "Sell an item"))),
    withdrawn ? h("div", { class: "banner banner-success", role: "status", id: "withdrawn-note" }, icon(icons.check), "Your listing is withdrawn: buyers no longer see it.") : null,
    results,
    status,
    h("div", { class: "more" }, more),
    sentinel,
  );
}
