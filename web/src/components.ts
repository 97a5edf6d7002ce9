// Pieces that several pages share.

import { Code, problem } from "./api";
import { h, icon, icons, replace, type Child } from "./dom";
import { busy } from "./forms";
import { avatar, conditionLabels, formatMoney, listingBadge, stars } from "./format";
import type { Media } from "./gen/swapmeet/v1/common_pb";
import { ListingStatus, type Listing } from "./gen/swapmeet/v1/listing_pb";
import { signedImage } from "./images";

/**
 * A photo in its frame. With a listing, its URL is kept fresh while it is
 * in the page (images.ts): the photo media_id, or with cover the listing's
 * first photo, whichever that is when it is read again.
 */
export function photo(m: Media | undefined, alt: string, opts: { thumb?: boolean; class?: string; listingId?: string; cover?: boolean } = {}): HTMLElement {
  if (!m) {
    return h("div", { class: `photo photo-empty ${opts.class ?? ""}` }, icon(icons.camera, 36));
  }
  const img = opts.listingId
    ? signedImage(m, { listingId: opts.listingId, mediaId: opts.cover ? "" : m.mediaId, thumb: opts.thumb }, { alt, loading: "lazy" })
    : h("img", { src: opts.thumb ? m.thumbnailUrl || m.url : m.url, alt, loading: "lazy", decoding: "async" });
  return h("div", { class: `photo ${opts.class ?? ""}` }, img);
}

export function listingCard(l: Listing): HTMLElement {
  return h(
    "a",
    { class: "card listing-card", href: `/listings/${l.listingId}`, dataset: { listingId: l.listingId, status: ListingStatus[l.status] } },
    h("div", { class: "card-media" }, photo(l.media[0], l.title, { thumb: true, listingId: l.listingId, cover: true }), listingBadge(l.status)),
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

/**
 * Calls load whenever el scrolls into view (infinite paging), until
 * stopped. The observer only reports changes, so a page that arrives
 * without pushing el out of view (a tall screen, a short page) would end
 * the paging: call the returned recheck after each page, and load is called
 * again if el is still in view.
 */
export function whenVisible(el: HTMLElement, signal: AbortSignal, load: () => void): () => void {
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) load();
  }, { rootMargin: "400px 0px" });
  io.observe(el);
  signal.addEventListener("abort", () => io.disconnect());
  return () => {
    if (signal.aborted) return;
    // Observing anew reports the current state, in view or not.
    io.unobserve(el);
    io.observe(el);
  };
}

/** The page was left while the request ran: nothing to show. */
export function isAbort(err: unknown): boolean {
  return problem(err).code === Code.Canceled;
}

export interface ConfirmStep {
  /** What is about to happen, as a question. */
  question: string;
  /** The labels of the two buttons: go ahead, and leave things as they are. */
  confirm: string;
  cancel: string;
  /** Does it; the confirm button is busy meanwhile. */
  run: () => Promise<void>;
  /** Puts back what the step replaced (on cancel or Escape). */
  restore: () => void;
  /** Focused after restore: the control that asked. */
  restoreFocus?: HTMLElement;
}

/**
 * Asks before something that cannot be undone, in place of slot's content:
 * the question and two buttons, the safe one focused. Escape cancels.
 */
export function confirmStep(slot: HTMLElement, c: ConfirmStep): void {
  const id = `confirm-${Math.random().toString(36).slice(2, 10)}`;
  const yes = h("button", { class: "btn btn-danger", type: "button" }, c.confirm);
  const no = h("button", { class: "btn btn-ghost", type: "button" }, c.cancel);
  const box = h("div", { class: "confirm", role: "group", "aria-labelledby": id }, h("p", { id }, c.question), h("div", { class: "confirm-actions" }, yes, no));
  const cancel = () => {
    c.restore();
    c.restoreFocus?.focus();
  };
  no.addEventListener("click", cancel);
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !yes.disabled) cancel();
  });
  yes.addEventListener("click", () => void busy(yes, c.run));
  replace(slot, box);
  no.focus();
}
