// What the app says when the API refuses: one table, from the refusal's
// machine-readable reason (a google.rpc.ErrorInfo detail of the domain
// "swapmeet.v1"; docs/errors.md lists them) to a sentence for people. The
// server's message is only the fallback for an error without a reason: it
// is meant for developers and may be reworded in any release.

import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb";

export const reasonDomain = "swapmeet.v1";

/** The refusal's reason, e.g. "LISTING_SOLD"; "" when the error has none. */
export function reasonOf(err: unknown): string {
  const ce = ConnectError.from(err);
  return ce.findDetails(ErrorInfoSchema).find((d) => d.domain === reasonDomain)?.reason ?? "";
}

export function hasReason(err: unknown, reason: string): boolean {
  return reasonOf(err) === reason;
}

/** How long the server asks the client to wait (RetryInfo, else Retry-After), in seconds; 0 if it does not say. */
export function retryAfter(err: unknown): number {
  const ce = ConnectError.from(err);
  const d = ce.findDetails(RetryInfoSchema)[0]?.retryDelay;
  if (d) return Math.max(1, Math.ceil(Number(d.seconds) + d.nanos / 1e9));
  const h = Number(ce.metadata.get("Retry-After"));
  return Number.isFinite(h) && h > 0 ? Math.ceil(h) : 0;
}

// A reason keeps its meaning forever (docs/errors.md), so these do too.
// Pages that can do more than say it (re-read a listing on VERSION_CONFLICT,
// the photos on MEDIA_SET_CHANGED) branch on the reason themselves and show
// the same sentence.
export const reasonMessages: Record<string, string> = {
  LISTING_SOLD: "Sorry, this item has just been sold to someone else.",
  LISTING_UNAVAILABLE: "This item is no longer for sale: the seller has withdrawn it.",
  OWN_LISTING: "This is your own listing: you cannot buy it.",
  MIXED_SELLERS: "These items come from different sellers. Place one order per seller.",
  CURRENCY_MISMATCH: "These items are priced in different currencies. Place one order per currency.",
  IDEMPOTENCY_KEY_REUSED: "This form was already sent with other details. Reload the page and try again.",
  IDEMPOTENCY_KEY_BUSY: "Your earlier attempt is still going through. Try again in a moment.",
  ORDER_NOT_IN_STATE: "This order has moved on since you opened it, so that step is no longer possible. It now shows its current status.",
  ALREADY_REVIEWED: "You have already reviewed this order.",
  EMAIL_TAKEN: "An account with this email already exists. Sign in instead.",
  LISTING_NOT_EDITABLE: "This listing is sold or withdrawn, so it can no longer be changed.",
  VERSION_CONFLICT: "This listing was changed elsewhere while you were editing it. Its newer version is shown: check your changes and save again.",
  MEDIA_LIMIT: "This listing has as many photos as a listing may have. Remove one to add another.",
  MEDIA_SET_CHANGED: "The photos were changed elsewhere (one added or removed) while you arranged them. They are shown as they are now: arrange them again.",
  UPLOAD_EXPIRED: "The upload took too long and expired. Add the photo again.",
  UPLOAD_MISSING: "The photo never reached the storage. Add it again.",
  UPLOAD_MISMATCH: "The stored file is not the photo that was announced, or not a JPEG, PNG or WebP image. Choose the file again.",
  CONSISTENCY_TIMEOUT: "Swapmeet is still catching up with your last change. Try again in a moment.",
  TOKEN_HISTORY_PENDING: "Swapmeet is recovering from a server switch. Try again in a moment.",
  TOKEN_HISTORY_LOST: "Your last change was lost in a server failure. Check what you see and make it again.",
  RATE_LIMITED: "Too many attempts. Wait a minute and try again.",
  SERVER_BUSY: "Swapmeet is very busy right now. Try again in a few seconds.",
  QUOTA_EXCEEDED: "You have reached a seller's limit: new listings per day, listings for sale at once, or photos waiting to be confirmed. Withdraw a listing, finish your uploads, or try again tomorrow.",
  CONTENTION: "Many changes are happening at once. Try again.",
  DEPENDENCY_UNAVAILABLE: "Part of Swapmeet is unavailable right now. Try again shortly.",
};

// For errors without a reason, by code.
const codeMessages: Partial<Record<Code, string>> = {
  [Code.Unavailable]: "Swapmeet is catching up. Try again in a moment.",
  [Code.Internal]: "Something went wrong on our side. Try again.",
  [Code.Unknown]: "Could not reach Swapmeet. Check your connection and try again.",
  [Code.DeadlineExceeded]: "That took too long. Try again.",
  [Code.ResourceExhausted]: "Too many attempts. Wait a minute and try again.",
};

/** The sentence for an error: by reason, else by code, else the server's message. */
export function messageFor(err: unknown): string {
  const ce = ConnectError.from(err);
  const reason = reasonOf(ce);
  let msg = reasonMessages[reason];
  // A limit says how long to wait: the message does too.
  const wait = retryAfter(ce);
  if (wait > 0 && (reason === "RATE_LIMITED" || reason === "SERVER_BUSY")) {
    msg = `${reason === "RATE_LIMITED" ? "Too many attempts." : "Swapmeet is very busy right now."} Try again in ${wait < 90 ? `${wait} second${wait === 1 ? "" : "s"}` : `${Math.ceil(wait / 60)} minutes`}.`;
  }
  return msg || codeMessages[ce.code] || ce.rawMessage || "Something went wrong.";
}
