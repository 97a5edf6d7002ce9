// One listing: photo gallery, details, the seller, the Buy button (for its
// seller: Edit and Withdraw) and the listing's history of price, title and
// status changes. While the page is open it follows the listing
// (WatchListing) and redraws on every change: price, status, text, photos;
// the history is read again with each. A state whose only news is freshly
// signed photo URLs is not redrawn: the URLs are swapped in place.

import { create, equals } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { consistencyToken, history, isCode, Code, listings, newKey, orders, problem, rememberWrite, session } from "../api";
import { confirmStep, failure, isAbort, loading, photo } from "../components";
import { h, icon, icons, replace } from "../dom";
import { banner, busy, showProblem } from "../forms";
import { avatar, conditionLabels, formatDate, formatMoney, listingBadge, listingStatusLabels, stars } from "../format";
import { MoneySchema, type Media } from "../gen/swapmeet/v1/common_pb";
import { ObjectType, type HistoryEntry } from "../gen/swapmeet/v1/history_pb";
import { ListingSchema, ListingStatus, type Listing } from "../gen/swapmeet/v1/listing_pb";
import { hasReason, reasonMessages } from "../errors";
import { applyListing, signedImage } from "../images";
import { isNewer, readNewer } from "../listing-form";
import { follow, indicator } from "../live";
import { navigate, type Route } from "../router";

// What outlives a redraw.
interface View {
  justListed: boolean;
  saved: boolean;
  // One key per page view: a double click or a retry buys once, however
  // often the page redraws.
  key: string;
  /** The media_id of the photo shown large; "" for the first. */
  photo: string;
  live: HTMLElement;
  /** The History section: kept across redraws, and read again with each. */
  history: HTMLElement;
  /** Shows a newer state (after a refused write). */
  show: (l: Listing, token: string) => void;
  /** A message for the next redraw, shown in the buy box. */
  notice: string;
  signal: AbortSignal;
}

export function listingPage({ params, query, signal }: Route): Node {
  const root = h("div", { class: "page page-listing" }, loading());
  const live = indicator();
  const changes = historySection(params.id, signal);
  let shown: Listing | undefined;
  const view: View = {
    justListed: query.get("listed") === "1",
    saved: query.get("saved") === "1",
    key: newKey(),
    photo: "",
    live: live.el,
    history: changes.el,
    show: (l, token) => show(l, token),
    notice: "",
    signal,
  };

  /** Shows l, and reads the history again as of token, which covers l's change. */
  function show(l: Listing, token: string): void {
    // A newer version is never replaced by an older one (the read and the
    // stream's first message may cross); an unchanged one is not redrawn,
    // and one whose only news is freshly signed photo URLs has them put in
    // place on the images already shown.
    if (shown && l.version < shown.version) return;
    if (shown && equals(ListingSchema, unsigned(l), unsigned(shown))) {
      shown = l;
      applyListing(l);
      return;
    }
    shown = l;
    replace(root, render(l, view));
    applyListing(l); // the newest URLs, for photos shown later
    document.title = `${l.title} · Swapmeet`;
    void changes.load(l, token);
  }

  async function load(): Promise<void> {
    try {
      // The tab's last write, if any: the listing and its history both show it.
      const token = consistencyToken();
      const res = await listings.getListing({ listingId: params.id, consistencyToken: token }, { signal });
      if (!res.listing) throw new Error("no listing");
      show(res.listing, token);
    } catch (err) {
      if (isAbort(err)) return;
      if (isCode(err, Code.NotFound) || isCode(err, Code.InvalidArgument)) {
        replace(root, h("div", { class: "empty" }, h("h1", { tabindex: -1 }, "This listing does not exist"), h("p", { class: "muted" }, "It may have been removed."), h("a", { class: "btn btn-primary", href: "/" }, "Browse listings")));
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
      // The message's token is at or past the state's commit, so the
      // history read with it has the change that state brought.
      onMessage: (msg) => {
        if (msg.listing) show(msg.listing, msg.resumeToken);
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
  const large = (m: Media | undefined) => photo(m, l.title, { listingId: l.listingId });
  const main = h("div", { class: "gallery-main" }, large(l.media[current]));
  const thumbs = h("div", { class: "gallery-thumbs" });
  l.media.forEach((m, i) => {
    const b = h(
      "button",
      { type: "button", class: i === current ? "thumb active" : "thumb", "aria-label": `Photo ${i + 1}`, "aria-pressed": String(i === current), dataset: { mediaId: m.mediaId } },
      signedImage(m, { listingId: l.listingId, mediaId: m.mediaId, thumb: true }, { alt: "" }),
    );
    b.addEventListener("click", () => {
      view.photo = m.mediaId;
      // With the newest URL (photo() takes it): the page may have been
      // open longer than the one it was drawn with lasts.
      replace(main, large(m));
      thumbs.querySelectorAll(".thumb").forEach((t) => {
        t.classList.toggle("active", t === b);
        t.setAttribute("aria-pressed", String(t === b));
      });
    });
    thumbs.append(b);
  });
  return h("div", { class: "gallery" }, main, l.media.length > 1 ? thumbs : null);
}

/** The seller's own controls: edit, and withdraw after a confirmation. */
function sellerActions(l: Listing, view: View, errors: HTMLElement): HTMLElement {
  const box = h("div", { class: "seller-actions" });
  const edit = h("a", { class: "btn btn-primary", href: `/listings/${l.listingId}/edit`, id: "edit-listing" }, "Edit listing");
  const withdraw = h("button", { class: "btn btn-danger", type: "button", id: "withdraw" }, "Withdraw…");
  withdraw.addEventListener("click", () => {
    confirmStep(box, {
      question: `Take “${l.title}” off sale? Buyers will no longer find it, and it cannot be put back on sale.`,
      confirm: "Withdraw listing",
      cancel: "Keep it for sale",
      restore: () => replace(box, edit, withdraw),
      restoreFocus: withdraw,
      run: async () => {
        try {
          const res = await listings.withdrawListing({ listingId: l.listingId, expectedVersion: l.version }, { signal: view.signal });
          rememberWrite(res.consistencyToken);
          navigate(`/me/listings?withdrawn=${l.listingId}`);
        } catch (err) {
          if (isAbort(err)) return;
          if (hasReason(err, "VERSION_CONFLICT")) {
            // Changed meanwhile (another tab): show the newer state, from
            // which the seller may withdraw it again.
            const newer = await readNewer(l, view.signal).catch(() => undefined);
            if (newer && isNewer(newer, l)) {
              view.notice = reasonMessages.VERSION_CONFLICT;
              view.show(newer, "");
              return;
            }
          }
          replace(box, edit, withdraw);
          errors.replaceChildren(h("strong", null, problem(err).message));
          errors.hidden = false;
        }
      },
    });
  });
  replace(box, edit, withdraw);
  return box;
}

function render(l: Listing, view: View): HTMLElement {
  const me = session();
  const mine = me?.userId === l.seller?.userId;
  const errors = banner();
  let action: HTMLElement;
  if (l.status !== ListingStatus.AVAILABLE) {
    action = h("div", { class: "sold-note", dataset: { status: ListingStatus[l.status] } }, icon(icons.tag), `This item is ${listingStatusLabels[l.status]?.toLowerCase() ?? "unavailable"}.`);
  } else if (mine) {
    action = h("div", { class: "own-box" }, h("div", { class: "own-note" }, "This is your listing. Buyers see a Buy button here."), sellerActions(l, view, errors));
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
          if (isAbort(err)) return;
          const p = problem(err);
          if (p.reason === "LISTING_SOLD" || p.reason === "LISTING_UNAVAILABLE") {
            // Sold or withdrawn since this page last heard: say so, and show
            // it as it is now (the stream may be behind, or broken).
            const newer = await readNewer(l, view.signal).catch(() => undefined);
            if (newer && isNewer(newer, l)) {
              view.notice = p.message;
              view.show(newer, "");
              return;
            }
          }
          showProblem(errorsParent, err);
        }
      }),
    );
    action = buy;
  }
  const notice = view.notice;
  view.notice = "";
  if (notice) {
    errors.append(h("strong", null, notice));
    errors.hidden = false;
  }
  const errorsParent = h("div", { class: "buy-box" }, h("div", { class: "listing-price" }, formatMoney(l.price)), action, errors);

  const attrs = Object.entries(l.attributes).sort(([a], [b]) => a.localeCompare(b));
  return h(
    "div",
    null,
    view.justListed && mine ? h("div", { class: "banner banner-success", role: "status" }, icon(icons.check), "Your item is listed. Buyers can find it now.") : null,
    view.saved && mine ? h("div", { class: "banner banner-success", role: "status", id: "saved" }, icon(icons.check), "Your changes are saved.") : null,
    h("nav", { class: "crumbs" }, h("a", { href: "/" }, "Browse"), " / ", h("a", { href: `/?category=${l.category}` }, l.category.replace(/-/g, " "))),
    h(
      "div",
      { class: "listing-layout" },
      gallery(l, view),
      h(
        "div",
        { class: "listing-info" },
        h("div", { class: "listing-head" }, h("h1", { id: "listing-title", tabindex: -1 }, l.title), listingBadge(l.status)),
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
        view.history,
      ),
    ),
  );
}

// ---- History -------------------------------------------------------------
//
// The listing's price, title and status changes, newest first, from
// HistoryService (public for a listing). Each change is one row: "7 Dec
// 2026, 14:05 — price €25.00 → €19.00". Other changes (description, photos,
// details) are left out.

interface Price {
  amount: string; // minor units, as the history gives them
  currency: string;
}

function historySection(listingId: string, signal: AbortSignal): { el: HTMLElement; load: (l: Listing, token: string) => Promise<void> } {
  const list = h("ol", { class: "history-list" });
  const status = h("div");
  const more = h("button", { class: "btn btn-ghost btn-small", type: "button", hidden: true }, "Show older changes");
  const el = h("section", { class: "history", id: "history" }, h("h2", null, "History"), list, status, more);
  let next = "";
  // The price just before the oldest entry shown: a change of the amount
  // alone says nothing of the currency, and the reverse.
  let price: Price = { amount: "", currency: "" };
  // Bumped by every first-page read, so that an older one that answers late is dropped.
  let generation = 0;

  async function read(first: boolean, token: string, l?: Listing): Promise<void> {
    const gen = first ? ++generation : generation;
    more.hidden = true;
    if (!first || !list.hasChildNodes()) status.replaceChildren(loading("Loading the history…"));
    try {
      const res = await history.listHistory({ objectType: ObjectType.LISTING, objectId: listingId, pageToken: first ? "" : next, consistencyToken: token }, { signal });
      if (gen !== generation) return;
      if (first) {
        list.replaceChildren();
        price = { amount: String(l?.price?.amountMinor ?? ""), currency: l?.price?.currencyCode ?? "" };
      }
      for (const e of res.entries) {
        const r = historyRows(e, price);
        price = r.before;
        list.append(...r.rows);
      }
      next = res.nextPageToken;
      more.hidden = !next;
      replace(status, !list.hasChildNodes() && !next ? h("p", { class: "muted" }, "No price, title or status changes yet.") : null);
    } catch (err) {
      if (gen === generation && !isAbort(err)) replace(status, failure(err, () => void read(first, token, l)));
    }
  }
  more.addEventListener("click", () => void read(false, ""));
  return { el, load: (l, token) => read(true, token, l) };
}

/** The rows one entry shows, given the price after it; and the price before it. */
function historyRows(e: HistoryEntry, after: Price): { rows: HTMLElement[]; before: Price } {
  const change = (field: string) => e.changes.find((c) => c.field === field);
  const amount = change("price.amount_minor");
  const currency = change("price.currency_code");
  const now: Price = { amount: amount?.after || after.amount, currency: currency?.after || after.currency };
  const before: Price = { amount: amount ? amount.before : now.amount, currency: currency ? currency.before : now.currency };
  const row = (field: string, ...text: string[]) =>
    h(
      "li",
      { class: e.lost ? "lost" : "", dataset: { field } },
      h("time", { datetime: e.commitTime ? timestampDate(e.commitTime).toISOString() : "" }, formatDate(e.commitTime, true)),
      ` — ${text.join("")}`,
      e.lost ? h("span", { class: "muted", title: "Recorded from a database history that was later abandoned: it is not part of the listing any more." }, " (undone)") : null,
    );
  const rows: HTMLElement[] = [];
  if (e.operation === "CREATED") {
    rows.push(row("listed", `listed at ${money(now)}`));
  } else if (e.operation === "DELETED") {
    rows.push(row("deleted", "removed"));
  } else {
    if (amount || currency) rows.push(row("price", `price ${money(before)} → ${money(now)}`));
    const title = change("title");
    if (title) rows.push(row("title", `title “${title.before}” → “${title.after}”`));
    const st = change("status");
    if (st) rows.push(row("status", `status ${statusLabel(st.before)} → ${statusLabel(st.after)}`));
  }
  return { rows, before };
}

function money(p: Price): string {
  if (!/^\d+$/.test(p.amount) || !p.currency) return p.amount || "?";
  return formatMoney(create(MoneySchema, { currencyCode: p.currency, amountMinor: BigInt(p.amount) }));
}

// "SOLD" → "Sold".
function statusLabel(name: string): string {
  return listingStatusLabels[ListingStatus[name as keyof typeof ListingStatus]] ?? name;
}
