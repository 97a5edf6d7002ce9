// Live updates: a server stream (WatchListing, WatchOrders) kept open for as
// long as the page is, and reopened whenever it ends or breaks, from the
// last resume token received, so that no change is missed.
//
// The server ends every stream after its maximum lifetime, and a network can
// drop one at any time, or silently: a heartbeat comes every 15 s, so a
// stream that says nothing for much longer than that is given up and
// reopened. Reconnects back off from half a second to ten, doubling, and
// start over once a message arrives; a stream the server ends cleanly is
// reopened at once.

import { Code, ConnectError } from "@connectrpc/connect";
import { h } from "./dom";

export type LiveState = "connecting" | "live" | "reconnecting" | "off";

export interface Live<M extends { resumeToken: string }> {
  /** Stopped when aborted: the route's signal, so leaving the page ends the stream. */
  signal: AbortSignal;
  /** Where to start: a resume token or a write's consistency token; "" for now. */
  resumeToken?: string;
  /**
   * Opens the stream from a token. Pass signal to the call, and opened as its
   * onHeader: a stream the server has answered is live before its first message.
   */
  open: (resumeToken: string, signal: AbortSignal, opened: () => void) => AsyncIterable<M>;
  /**
   * Handles one message, heartbeats included. Its token counts as received
   * only once this returns: if it throws, the stream is reopened from the
   * previous token.
   */
  onMessage: (msg: M) => void | Promise<void>;
  onState?: (state: LiveState) => void;
}

const minDelay = 500;
const maxDelay = 10_000;
// Three heartbeats missed: the connection is gone without having said so.
const silence = 45_000;

// Errors that another attempt would only repeat: the stream stops.
const final = new Set([Code.InvalidArgument, Code.NotFound, Code.PermissionDenied, Code.Unauthenticated, Code.Unimplemented]);

/** Follows a stream until signal aborts or the server refuses it for good. Never throws. */
export async function follow<M extends { resumeToken: string }>(live: Live<M>): Promise<void> {
  const { signal } = live;
  let token = live.resumeToken ?? "";
  let delay = minDelay;
  let state: LiveState | null = null;
  const set = (s: LiveState) => {
    if (s !== state && !signal.aborted) live.onState?.((state = s));
  };
  set("connecting");
  while (!signal.aborted) {
    const attempt = new AbortController();
    const stop = () => attempt.abort();
    signal.addEventListener("abort", stop);
    let quiet = setTimeout(stop, silence);
    let heard = false;
    const since = Date.now();
    try {
      for await (const msg of live.open(token, attempt.signal, () => set("live"))) {
        clearTimeout(quiet);
        quiet = setTimeout(stop, silence);
        await live.onMessage(msg);
        if (msg.resumeToken) token = msg.resumeToken;
        heard = true;
        delay = minDelay;
        set("live");
      }
      // Ended cleanly, at the server's maximum lifetime: reopened from the
      // token at once, with no "reconnecting" in between. One that ends
      // before saying anything, or within a second, is retried like a failure.
      if (heard && Date.now() - since > 1000) continue;
    } catch (err) {
      if (signal.aborted) return;
      const code = ConnectError.from(err).code;
      if (final.has(code)) {
        set("off");
        return;
      }
    } finally {
      clearTimeout(quiet);
      signal.removeEventListener("abort", stop);
    }
    if (signal.aborted) return;
    set("reconnecting");
    // A little jitter, so that clients a restart cut off do not all return at once.
    await sleep(delay * (0.75 + Math.random() / 2), signal);
    delay = Math.min(delay * 2, maxDelay);
  }
}

// Waits ms, or less if the page is left or the browser comes back online.
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      window.removeEventListener("online", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done);
    window.addEventListener("online", done);
  });
}

const stateLabels: Record<LiveState, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  off: "",
};

const stateTitles: Record<LiveState, string> = {
  connecting: "Connecting for live updates",
  live: "Changes show up here as they happen",
  reconnecting: "The connection dropped: reconnecting. What you see may be out of date.",
  off: "",
};

/** A small "Live" / "Reconnecting…" marker, and the onState that drives it. */
export function indicator(): { el: HTMLElement; onState: (s: LiveState) => void } {
  const el = h("span", { class: "live", role: "status", hidden: true });
  return {
    el,
    onState: (s) => {
      el.dataset.state = s;
      el.hidden = s === "off";
      el.title = stateTitles[s];
      el.replaceChildren(h("span", { class: "live-dot", "aria-hidden": "true" }), stateLabels[s]);
    },
  };
}
