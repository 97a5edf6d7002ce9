// Pieces that several pages share.

import { Code, problem } from "./api";
import { h, icon, icons, type Child } from "./dom";
import { avatar, conditionLabels, formatMoney, listingBadge, stars } from "./format";
import type { Media } from "./gen/swapmeet/v1/common_pb";
import type { Listing } from "./gen/swapmeet/v1/listing_pb";

export function photo(m: Media | undefined, alt: string, opts: { thumb?: boolean; class?: string } = {}): HTMLElement {
  if (!m) {
    return h("div", { class: `photo photo-empty ${opts.class ?? ""}` }, icon(icons.camera, 36));
  }
  return h(
    "div",
    { class: `photo ${opts.class ?? ""}` },
    h("img", { src: opts.thumb ? m.thumbnailUrl || m.url : m.url, alt, loading: "lazy", decoding: "async" }),
  );
}

export function listingCard(l: Listing): HTMLElement {
  return h(
    "a",
    { class: "card listing-card", href: `/listings/${l.listingId}`, dataset: { listingId: l.listingId } },
    h("div", { class: "card-media" }, photo(l.media[0], l.title, { thumb: true }), listingBadge(l.status)),
    h(
      "div",
      { class: "card-body" },
      h("div", { class: "card-price" }, formatMoney(l.price)),
      h("h3", { class: "card-title" }, l.title),
      h("div", { class: "card-meta" }, h("span", { class: "chip" }, conditionLabels[l.condition] ?? ""), h("span", { class: "muted" }, l.category)),
      l.seller
        ? h("div", { class: "card-seller" }, avatar(l.seller.displayName, l.seller.userId, "sm"), h("span", null, l.seller.displayName), stars(l.seller.ratingAverage, l.seller.ratingCount, { compact: true }))
        : null,
    ),
  );
}

export function loading(label = "Loading…"): HTMLElement {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner" }), label);
}

export function empty(title: string, body?: Child, action?: Child): HTMLElement {
  return h("div", { class: "empty" }, icon(icons.box, 40), h("h3", null, title), body ? h("p", { class: "muted" }, body) : null, action);
}

export function failure(err: unknown, retry?: () => void): HTMLElement {
  return h(
    "div",
    { class: "banner banner-error", role: "alert" },
    h("strong", null, problem(err).message),
    retry ? h("button", { class: "btn btn-small", type: "button", onClick: retry }, "Try again") : null,
  );
}

/** Calls load whenever el scrolls into view (infinite paging), until stopped. */
export function whenVisible(el: HTMLElement, signal: AbortSignal, load: () => void): void {
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) load();
  }, { rootMargin: "400px 0px" });
  io.observe(el);
  signal.addEventListener("abort", () => io.disconnect());
}

/** The page was left while the request ran: nothing to show. */
export function isAbort(err: unknown): boolean {
  return problem(err).code === Code.Canceled;
}
