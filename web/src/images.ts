// Photos stay visible however long a page is open. Every image URL the API
// gives is presigned and expires (Media.url_expires_at, minutes after the
// read). Each <img> of a listing's photo is registered here with its
// listing, its photo and its expiry; before the earliest expiry (at 80% of
// the URL's remaining lifetime) the listing is read again (GetListing) and
// the new URLs are put in place on the same elements: no redraw, no
// flicker, the browser swaps the picture once the new one has loaded. An
// <img> that fails to load (a URL that expired while the tab slept, say)
// has its listing read again at once, once per URL.
//
// Images that have left the page are forgotten at the next check.

import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { listings } from "./api";
import type { Media } from "./gen/swapmeet/v1/common_pb";
import type { Listing } from "./gen/swapmeet/v1/listing_pb";

export interface ImageSource {
  listingId: string;
  /** The photo; "" for the listing's cover, whichever photo is first now. */
  mediaId: string;
  /** The thumbnail (if the listing has one) rather than the full photo. */
  thumb?: boolean;
}

interface Tracked extends ImageSource {
  /** When to read the listing again, ms since the epoch. */
  refreshAt: number;
  /** The src that failed to load and made the listing be read again. */
  failed: string;
}

const tracked = new Map<HTMLImageElement, Tracked>();
// The newest photos known of each listing with images in the page: an
// image made later (a photo the gallery shows large only now) takes its
// URL from here rather than from the state the page was drawn with.
const newest = new Map<string, Media[]>();
// Earliest next read per listing after a failed one, so that a listing the
// API cannot serve is not asked for in a loop.
const backoff = new Map<string, { until: number; delay: number }>();
let timer: ReturnType<typeof setTimeout> | undefined;
let running = false;

// Refresh at 80% of what is left of a URL's lifetime, and never sooner
// than this after it arrived: a client clock far ahead of the server's must
// not turn into a loop of reads.
const share = 0.8;
const minDelay = 5_000;
const fallbackDelay = 60_000; // no expiry given, or one already past by this clock
const parallel = 4;

function refreshAt(m: Media, now = Date.now()): number {
  if (!m.urlExpiresAt) return now + fallbackDelay;
  const left = timestampMs(m.urlExpiresAt) - now;
  return now + (left > 0 ? Math.max(minDelay, left * share) : fallbackDelay);
}

const expiry = (m: Media) => (m.urlExpiresAt ? timestampMs(m.urlExpiresAt) : 0);

/** m, or the same photo with URLs that last longer, if a later read brought them. */
export function freshest(listingId: string, m: Media): Media {
  const n = newest.get(listingId)?.find((x) => x.mediaId === m.mediaId);
  return n && expiry(n) > expiry(m) ? n : m;
}

function urlOf(m: Media, thumb: boolean | undefined): string {
  return thumb ? m.thumbnailUrl || m.url : m.url;
}

/** An <img> of a photo whose URL is kept fresh while it is in the page. */
export function signedImage(m: Media, source: ImageSource, attrs: { alt: string; loading?: "lazy" | "eager"; class?: string }): HTMLImageElement {
  m = freshest(source.listingId, m);
  const img = document.createElement("img");
  img.alt = attrs.alt;
  if (attrs.loading) img.loading = attrs.loading;
  if (attrs.class) img.className = attrs.class;
  img.decoding = "async";
  img.src = urlOf(m, source.thumb);
  img.dataset.mediaId = m.mediaId;
  track(img, m, source);
  return img;
}

function track(img: HTMLImageElement, m: Media, source: ImageSource): void {
  tracked.set(img, { ...source, refreshAt: refreshAt(m), failed: "" });
  img.addEventListener("error", () => {
    const t = tracked.get(img);
    // Once per URL: a fresh URL that fails too is not the URL's fault.
    if (!t || !img.src || t.failed === img.src) return;
    t.failed = img.src;
    t.refreshAt = 0;
    schedule(0);
  });
  schedule();
}

/**
 * Puts the URLs of l (just read, or just streamed) in place on every
 * image of it in the page. Returns how many src attributes changed.
 */
export function applyListing(l: Listing): number {
  newest.set(l.listingId, l.media);
  let changed = 0;
  const now = Date.now();
  for (const [img, t] of tracked) {
    if (t.listingId !== l.listingId) continue;
    const m = t.mediaId ? l.media.find((x) => x.mediaId === t.mediaId) : l.media[0];
    if (!m) continue; // the photo was removed: the page redraws without it
    const url = urlOf(m, t.thumb);
    if (img.src !== url) {
      img.src = url;
      img.dataset.mediaId = m.mediaId;
      changed++;
    }
    t.refreshAt = refreshAt(m, now);
  }
  backoff.delete(l.listingId);
  schedule();
  return changed;
}

/** Arms the timer for the earliest refresh due. */
function schedule(delay?: number): void {
  if (running) return; // tick() schedules when it is done
  let next = Infinity;
  for (const t of tracked.values()) next = Math.min(next, Math.max(t.refreshAt, backoff.get(t.listingId)?.until ?? 0));
  clearTimeout(timer);
  timer = undefined;
  if (next === Infinity) return;
  timer = setTimeout(() => void tick(), delay ?? Math.max(0, next - Date.now()));
}

async function tick(): Promise<void> {
  if (running) return;
  running = true;
  try {
    const now = Date.now();
    // Every listing with an image due, or due within the next few seconds:
    // one read serves them all.
    const due = new Set<string>();
    for (const [img, t] of tracked) {
      // Gone from the page (images are put in it as soon as they are made).
      if (!img.isConnected) {
        tracked.delete(img);
        continue;
      }
      if (t.refreshAt <= now + 2_000 && (backoff.get(t.listingId)?.until ?? 0) <= now) due.add(t.listingId);
    }
    const shown = new Set(Array.from(tracked.values(), (t) => t.listingId));
    for (const id of newest.keys()) if (!shown.has(id)) newest.delete(id);
    const queue = [...due];
    await Promise.all(
      Array.from({ length: Math.min(parallel, queue.length) }, async () => {
        for (let id = queue.shift(); id; id = queue.shift()) await refresh(id);
      }),
    );
  } finally {
    running = false;
    schedule();
  }
}

async function refresh(listingId: string): Promise<void> {
  try {
    const res = await listings.getListing({ listingId });
    if (res.listing) applyListing(res.listing);
  } catch (err) {
    if (ConnectError.from(err).code === Code.NotFound) {
      for (const [img, t] of tracked) if (t.listingId === listingId) tracked.delete(img);
      return;
    }
    // Offline, or the API is busy: try again, less and less often.
    const delay = Math.min((backoff.get(listingId)?.delay ?? 2_500) * 2, 60_000);
    backoff.set(listingId, { until: Date.now() + delay, delay });
  }
}

// Timers sleep with a hidden tab, and the network with a laptop: check as
// soon as the page is back.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") schedule(0);
});
window.addEventListener("online", () => {
  backoff.clear();
  schedule(0);
});
