// One listing: photo gallery, details, the seller and the Buy button.

import { consistencyToken, isCode, Code, listings, newKey, orders, rememberWrite, session } from "../api";
import { failure, isAbort, loading, photo } from "../components";
import { h, icon, icons, replace } from "../dom";
import { banner, busy, showProblem } from "../forms";
import { avatar, conditionLabels, formatDate, formatMoney, listingBadge, listingStatusLabels, stars } from "../format";
import { ListingStatus, type Listing } from "../gen/swapmeet/v1/listing_pb";
import { navigate, type Route } from "../router";

export function listingPage({ params, query, signal }: Route): Node {
  const root = h("div", { class: "page page-listing" }, loading());

  async function load(): Promise<void> {
    try {
      const res = await listings.getListing({ listingId: params.id, consistencyToken: consistencyToken() }, { signal });
      if (!res.listing) throw new Error("no listing");
      replace(root, render(res.listing, query.get("listed") === "1"));
      document.title = `${res.listing.title} · Swapmeet`;
    } catch (err) {
      if (isAbort(err)) return;
      if (isCode(err, Code.NotFound) || isCode(err, Code.InvalidArgument)) {
        replace(root, h("div", { class: "empty" }, h("h2", null, "This listing does not exist"), h("p", { class: "muted" }, "It may have been removed."), h("a", { class: "btn btn-primary", href: "/" }, "Browse listings")));
        return;
      }
      replace(root, failure(err, () => void load()));
    }
  }
  void load();
  return root;
}

function gallery(l: Listing): HTMLElement {
  const main = h("div", { class: "gallery-main" }, photo(l.media[0], l.title));
  const thumbs = h("div", { class: "gallery-thumbs" });
  l.media.forEach((m, i) => {
    const b = h(
      "button",
      { type: "button", class: i === 0 ? "thumb active" : "thumb", "aria-label": `Photo ${i + 1}` },
      h("img", { src: m.thumbnailUrl || m.url, alt: "" }),
    );
    b.addEventListener("click", () => {
      replace(main, photo(m, l.title));
      thumbs.querySelectorAll(".thumb").forEach((t) => t.classList.toggle("active", t === b));
    });
    thumbs.append(b);
  });
  return h("div", { class: "gallery" }, main, l.media.length > 1 ? thumbs : null);
}

function render(l: Listing, justListed: boolean): HTMLElement {
  const me = session();
  const mine = me?.userId === l.seller?.userId;
  const errors = banner();
  let action: HTMLElement;
  if (l.status !== ListingStatus.AVAILABLE) {
    action = h("div", { class: "sold-note", dataset: { status: ListingStatus[l.status] } }, icon(icons.tag), `This item is ${listingStatusLabels[l.status]?.toLowerCase() ?? "unavailable"}.`);
  } else if (mine) {
    action = h("div", { class: "own-note" }, "This is your listing. Buyers see a Buy button here.");
  } else if (!me) {
    action = h("a", { class: "btn btn-primary btn-large", href: `/signin?next=${encodeURIComponent(location.pathname)}` }, "Sign in to buy");
  } else {
    // One key per page view: a double click or a retry buys once.
    const key = newKey();
    const buy = h("button", { class: "btn btn-primary btn-large", type: "button", id: "buy" }, icon(icons.bag), "Buy now");
    buy.addEventListener("click", () =>
      busy(buy, async () => {
        try {
          const res = await orders.placeOrder({ listingIds: [l.listingId], idempotencyKey: key });
          rememberWrite(res.consistencyToken);
          navigate(`/orders?placed=${res.orderId}`);
        } catch (err) {
          showProblem(errorsParent, err);
        }
      }),
    );
    action = buy;
  }
  const errorsParent = h("div", { class: "buy-box" }, h("div", { class: "listing-price" }, formatMoney(l.price)), action, errors);

  const attrs = Object.entries(l.attributes).sort(([a], [b]) => a.localeCompare(b));
  return h(
    "div",
    null,
    justListed && mine ? h("div", { class: "banner banner-success", role: "status" }, icon(icons.check), "Your item is listed. Buyers can find it now.") : null,
    h("nav", { class: "crumbs" }, h("a", { href: "/" }, "Browse"), " / ", h("a", { href: `/?category=${l.category}` }, l.category.replace(/-/g, " "))),
    h(
      "div",
      { class: "listing-layout" },
      gallery(l),
      h(
        "div",
        { class: "listing-info" },
        h("div", { class: "listing-head" }, h("h1", { id: "listing-title" }, l.title), listingBadge(l.status)),
        h("div", { class: "listing-facts" }, h("span", { class: "chip" }, conditionLabels[l.condition] ?? ""), h("span", { class: "muted" }, `Listed ${formatDate(l.createdAt)}`)),
        errorsParent,
        l.seller
          ? h(
              "a",
              { class: "seller-card card", href: `/users/${l.seller.userId}` },
              avatar(l.seller.displayName, l.seller.userId, "lg"),
              h("div", null, h("div", { class: "muted small" }, "Sold by"), h("div", { class: "seller-name" }, l.seller.displayName), stars(l.seller.ratingAverage, l.seller.ratingCount)),
            )
          : null,
        attrs.length
          ? h("dl", { class: "attributes" }, attrs.map(([k, v]) => [h("dt", null, k.replace(/[_-]/g, " ")), h("dd", null, v)]))
          : null,
        l.description ? h("div", { class: "description" }, h("h2", null, "Description"), h("p", null, l.description)) : null,
      ),
    ),
  );
}
