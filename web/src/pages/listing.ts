// One listing: photo gallery, details, the seller and the Buy button. While
// the page is open it follows the listing (WatchListing) and redraws on
// every change: price, status, text, photos.

import { equals } from "@bufbuild/protobuf";
import { consistencyToken, isCode, Code, listings, newKey, orders, rememberWrite, session } from "../api";
import { failure, isAbort, loading, photo } from "../components";
import { h, icon, icons, replace } from "../dom";
import { banner, busy, showProblem } from "../forms";
import { avatar, conditionLabels, formatDate, formatMoney, listingBadge, listingStatusLabels, stars } from "../format";
import { ListingSchema, ListingStatus, type Listing } from "../gen/swapmeet/v1/listing_pb";
import { follow, indicator } from "../live";
import { navigate, type Route } from "../router";

// What outlives a redraw.
interface View {
  justListed: boolean;
  // One key per page view: a double click or a retry buys once, however
  // often the page redraws.
  key: string;
  /** The media_id of the photo shown large; "" for the first. */
  photo: string;
  live: HTMLElement;
}

export function listingPage({ params, query, signal }: Route): Node {
  const root = h("div", { class: "page page-listing" }, loading());
  const live = indicator();
  const view: View = { justListed: query.get("listed") === "1", key: newKey(), photo: "", live: live.el };
  let shown: Listing | undefined;

  function show(l: Listing): void {
    // A newer version is never replaced by an older one (the read and the
    // stream's first message may cross); an unchanged one is not redrawn,
    // nor one whose only news is freshly signed photo URLs.
    if (shown && (l.version < shown.version || equals(ListingSchema, unsigned(l), unsigned(shown)))) return;
    shown = l;
    replace(root, render(l, view));
    document.title = `${l.title} · Swapmeet`;
  }

  async function load(): Promise<void> {
    try {
      const res = await listings.getListing({ listingId: params.id, consistencyToken: consistencyToken() }, { signal });
      if (!res.listing) throw new Error("no listing");
      show(res.listing);
    } catch (err) {
      if (isAbort(err)) return;
      if (isCode(err, Code.NotFound) || isCode(err, Code.InvalidArgument)) {
        replace(root, h("div", { class: "empty" }, h("h2", null, "This listing does not exist"), h("p", { class: "muted" }, "It may have been removed."), h("a", { class: "btn btn-primary", href: "/" }, "Browse listings")));
        return;
      }
      replace(root, failure(err, () => void load()));
      return;
    }
    // Without a token the stream starts with the current state, then sends
    // one whole state per change; a message without a listing is a heartbeat.
    void follow({
      signal,
      open: (resumeToken, signal, opened) => listings.watchListing({ listingId: params.id, resumeToken }, { signal, onHeader: opened }),
      onMessage: (msg) => {
        if (msg.listing) show(msg.listing);
      },
      onState: live.onState,
    });
  }
  void load();
  return root;
}

// The listing without its photos' presigned URLs, which every read signs anew.
function unsigned(l: Listing): Listing {
  return { ...l, media: l.media.map((m) => ({ ...m, url: "", thumbnailUrl: "", urlExpiresAt: undefined })) };
}

function gallery(l: Listing, view: View): HTMLElement {
  // The photo the user picked stays large across redraws, while it exists.
  const current = Math.max(0, l.media.findIndex((m) => m.mediaId === view.photo));
  const main = h("div", { class: "gallery-main" }, photo(l.media[current], l.title));
  const thumbs = h("div", { class: "gallery-thumbs" });
  l.media.forEach((m, i) => {
    const b = h(
      "button",
      { type: "button", class: i === current ? "thumb active" : "thumb", "aria-label": `Photo ${i + 1}` },
      h("img", { src: m.thumbnailUrl || m.url, alt: "" }),
    );
    b.addEventListener("click", () => {
      view.photo = m.mediaId;
      replace(main, photo(m, l.title));
      thumbs.querySelectorAll(".thumb").forEach((t) => t.classList.toggle("active", t === b));
    });
    thumbs.append(b);
  });
  return h("div", { class: "gallery" }, main, l.media.length > 1 ? thumbs : null);
}

function render(l: Listing, view: View): HTMLElement {
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
    const buy = h("button", { class: "btn btn-primary btn-large", type: "button", id: "buy" }, icon(icons.bag), "Buy now");
    buy.addEventListener("click", () =>
      busy(buy, async () => {
        try {
          const res = await orders.placeOrder({ listingIds: [l.listingId], idempotencyKey: view.key });
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
    view.justListed && mine ? h("div", { class: "banner banner-success", role: "status" }, icon(icons.check), "Your item is listed. Buyers can find it now.") : null,
    h("nav", { class: "crumbs" }, h("a", { href: "/" }, "Browse"), " / ", h("a", { href: `/?category=${l.category}` }, l.category.replace(/-/g, " "))),
    h(
      "div",
      { class: "listing-layout" },
      gallery(l, view),
      h(
        "div",
        { class: "listing-info" },
        h("div", { class: "listing-head" }, h("h1", { id: "listing-title" }, l.title), listingBadge(l.status)),
        h("div", { class: "listing-facts" }, h("span", { class: "chip" }, conditionLabels[l.condition] ?? ""), h("span", { class: "muted" }, `Listed ${formatDate(l.createdAt)}`), view.live),
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
