// The API: generated Connect clients over one Connect-Web transport, the
// session, and the consistency token that makes every write visible to
// the reads that follow it.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { messageFor, reasonOf } from "./errors";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb";
import { HistoryService } from "./gen/swapmeet/v1/history_pb";
import { ListingService } from "./gen/swapmeet/v1/listing_pb";
import { OrderService } from "./gen/swapmeet/v1/order_pb";
import { ReviewService } from "./gen/swapmeet/v1/review_pb";
import { UserService } from "./gen/swapmeet/v1/user_pb";

// The API's origin. The binary serves the built app itself, so production
// calls are same-origin. The Vite dev server (localhost:5173) calls the
// API of `make run` across origins, which its CORS allows; VITE_API_URL
// points it elsewhere.
const baseUrl: string =
  import.meta.env.VITE_API_URL ?? (import.meta.env.DEV ? "http://127.0.0.1:8080" : window.location.origin);

// ---- Session -------------------------------------------------------------

export interface Session {
  userId: string;
  token: string;
  displayName: string;
}

const sessionKey = "swapmeet.session";
const listeners = new Set<(signedInOrOut: boolean) => void>();

export function session(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem(sessionKey) ?? "null") as Session | null;
    return s && s.userId && s.token ? s : null;
  } catch {
    return null;
  }
}

export function setSession(s: Session | null): void {
  const was = session();
  if (s) localStorage.setItem(sessionKey, JSON.stringify(s));
  else localStorage.removeItem(sessionKey);
  const signedInOrOut = was?.userId !== s?.userId || was?.token !== s?.token;
  listeners.forEach((f) => f(signedInOrOut));
}

/**
 * Calls f whenever the session changes in this tab: the user signed in or
 * out (signedInOrOut), or only their name changed.
 */
export function onSessionChange(f: (signedInOrOut: boolean) => void): void {
  listeners.add(f);
}

// ---- Read your writes ----------------------------------------------------
//
// Every write answers with a consistency token: its commit position. The
// app keeps the newest one and sends it with every query, which then waits
// (briefly) until the read side has applied that write. So a user always
// sees their own listing, order status or review at once, while everybody
// else reads without waiting. Past a minute the CDC has long applied it,
// so the token is dropped: it would only cost a check.

const tokenKey = "swapmeet.consistency";
const tokenTTL = 60_000;

export function rememberWrite(token: string | undefined): void {
  if (token) sessionStorage.setItem(tokenKey, JSON.stringify({ token, at: Date.now() }));
}

export function consistencyToken(): string {
  try {
    const t = JSON.parse(sessionStorage.getItem(tokenKey) ?? "null") as { token: string; at: number } | null;
    if (t && Date.now() - t.at < tokenTTL) return t.token;
  } catch {
    // fall through
  }
  sessionStorage.removeItem(tokenKey);
  return "";
}

// ---- Transport -----------------------------------------------------------

/** Forgets the tab's last write, as when the server says its history is lost. */
export function forgetWrite(): void {
  sessionStorage.removeItem(tokenKey);
}

const auth: Interceptor = (next) => async (req) => {
  const s = session();
  if (s) req.header.set("Authorization", `Bearer ${s.token}`);
  const check = (err: unknown) => {
    // A session the server no longer knows (expired, signed out elsewhere).
    if (s && ConnectError.from(err).code === Code.Unauthenticated && session()?.token === s.token) {
      setSession(null);
    }
    // The write the token stands for was lost with an abandoned database
    // history (docs/errors.md): reading with it again would fail again.
    if (reasonOf(err) === "TOKEN_HISTORY_LOST") forgetWrite();
  };
  try {
    const res = await next(req);
    // A stream's error comes after its headers, with its messages: WatchOrders
    // ends with Unauthenticated when the session does.
    return res.stream && s ? { ...res, message: checked(res.message, check) } : res;
  } catch (err) {
    check(err);
    throw err;
  }
};

async function* checked<T>(messages: AsyncIterable<T>, check: (err: unknown) => void): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    check(err);
    throw err;
  }
}

// Queries have no side effects, so one that got Unavailable (the read side
// had not caught up with the token in the server's wait, or a dependency
// blipped; the server says "retry shortly") is tried again, twice, before
// the page shows an error. Writes are never retried here.
const retryQueries: Interceptor = (next) => async (req) => {
  if (req.stream || req.method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) return next(req);
  for (let attempt = 0; ; attempt++) {
    try {
      return await next(req);
    } catch (err) {
      if (attempt >= 2 || ConnectError.from(err).code !== Code.Unavailable || req.signal.aborted) throw err;
      await new Promise((resolve) => setTimeout(resolve, 300 * 3 ** attempt));
    }
  }
};

const transport = createConnectTransport({
  baseUrl,
  // Queries are marked NO_SIDE_EFFECTS in the protos, so they go as GET
  // requests (cacheable, no preflight for simple ones); writes POST.
  useHttpGet: true,
  interceptors: [auth, retryQueries],
});

export const users = createClient(UserService, transport);
export const listings = createClient(ListingService, transport);
export const orders = createClient(OrderService, transport);
export const reviews = createClient(ReviewService, transport);
export const history = createClient(HistoryService, transport);

// ---- Errors --------------------------------------------------------------

export interface Problem {
  message: string;
  /** Field path (as the server names it, e.g. "price.amount_minor") to description. */
  fields: Map<string, string>;
  code?: Code;
  /** The refusal's reason (ErrorInfo), e.g. "LISTING_SOLD"; "" without one. */
  reason: string;
}

/**
 * What to show for an error: the sentence for its reason (web/src/errors.ts),
 * and the field violations of an InvalidArgument.
 */
export function problem(err: unknown): Problem {
  const ce = ConnectError.from(err);
  const fields = new Map<string, string>();
  for (const br of ce.findDetails(BadRequestSchema)) {
    for (const v of br.fieldViolations) {
      if (!fields.has(v.field)) fields.set(v.field, v.description);
    }
  }
  const reason = reasonOf(ce);
  let message = messageFor(ce);
  if (ce.code === Code.InvalidArgument && fields.size > 0) message = "Please fix the highlighted fields.";
  if (message) message = message.charAt(0).toUpperCase() + message.slice(1);
  return { message, fields, code: ce.code, reason };
}

/**
 * A client-side InvalidArgument, shaped like the server's, so that a check
 * the browser can make shows up exactly like one the server made.
 */
export function invalid(field: string, description: string): ConnectError {
  return new ConnectError(`${field}: ${description}`, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: { fieldViolations: [{ field, description }] } },
  ]);
}

export function isCode(err: unknown, code: Code): boolean {
  return ConnectError.from(err).code === code;
}

export { Code };

/** An idempotency key for a write the user may submit twice. */
export function newKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
