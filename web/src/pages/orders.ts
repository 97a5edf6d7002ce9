// My orders (as buyer) and my sales (as seller), with the status actions.
// While the page is open it follows the user's orders (WatchOrders): a
// status changes in place, a new order shows up at the top.

import { equals } from "@bufbuild/protobuf";
import { timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { consistencyToken, orders, rememberWrite, session } from "../api";
import { empty, failure, isAbort, loading, photo } from "../components";
import { h, icon, icons, replace } from "../dom";
import { banner, busy, showProblem } from "../forms";
import { avatar, formatDate, formatMoney, orderBadge, orderStatusLabels, timeAgo } from "../format";
import { OrderRole, OrderSchema, OrderStatus, type Order } from "../gen/swapmeet/v1/order_pb";
import { hasReason } from "../errors";
import { follow, indicator } from "../live";
import { setQuery, type Route } from "../router";

const steps = [OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED];
const stepLabels: Record<number, string> = {
  [OrderStatus.PENDING]: "Ordered",
  [OrderStatus.PAID]: "Paid",
  [OrderStatus.SHIPPED]: "Shipped",
  [OrderStatus.DELIVERED]: "Delivered",
};

interface Action {
  label: string;
  icon: string;
  kind: "primary" | "ghost" | "danger";
  run: (orderId: string) => Promise<{ consistencyToken: string }>;
  confirm?: string;
}

// What each party may do in each status (the server enforces the same).
export function actions(o: Order, role: OrderRole): Action[] {
  const cancel: Action = { label: "Cancel order", icon: icons.x, kind: "danger", run: (orderId) => orders.cancelOrder({ orderId }), confirm: "Cancel this order? The item goes back on sale." };
  if (role === OrderRole.BUYER) {
    switch (o.status) {
      case OrderStatus.PENDING:
        return [{ label: "Pay now", icon: icons.card, kind: "primary", run: (orderId) => orders.markOrderPaid({ orderId }) }, cancel];
      case OrderStatus.PAID:
        return [cancel];
      case OrderStatus.SHIPPED:
        return [{ label: "Confirm delivery", icon: icons.check, kind: "primary", run: (orderId) => orders.confirmDelivery({ orderId }) }];
    }
  } else {
    switch (o.status) {
      case OrderStatus.PENDING:
        return [cancel];
      case OrderStatus.PAID:
        return [{ label: "Mark as shipped", icon: icons.truck, kind: "primary", run: (orderId) => orders.markOrderShipped({ orderId }) }, cancel];
    }
  }
  return [];
}

function timeline(o: Order): HTMLElement {
  const at = new Map(o.history.map((c) => [c.status, c.at]));
  if (o.status === OrderStatus.CANCELLED) {
    return h("ol", { class: "timeline" }, o.history.map((c) => h("li", { class: "done" }, h("span", { class: "dot" }), h("span", null, orderStatusLabels[c.status] ?? ""), h("time", null, formatDate(c.at, true)))));
  }
  const reached = steps.indexOf(o.status);
  return h(
    "ol",
    { class: "timeline" },
    steps.map((s, i) => h("li", { class: i <= reached ? "done" : "" }, h("span", { class: "dot" }), h("span", null, stepLabels[s]), h("time", null, at.has(s) ? formatDate(at.get(s), true) : ""))),
  );
}

export function hint(o: Order, role: OrderRole): string {
  const buyer = role === OrderRole.BUYER;
  switch (o.status) {
    case OrderStatus.PENDING:
      return buyer ? "The item is reserved for you. Pay to complete the purchase." : "Waiting for the buyer to pay.";
    case OrderStatus.PAID:
      return buyer ? "Paid. The seller will ship it soon." : "Paid. Ship the item, then mark it as shipped.";
    case OrderStatus.SHIPPED:
      return buyer ? "On its way. Confirm delivery once it arrives." : "On its way to the buyer.";
    case OrderStatus.DELIVERED:
      return buyer ? "Delivered. How was the seller?" : "Delivered. Well done!";
    case OrderStatus.CANCELLED:
      return "Cancelled. The item went back on sale.";
  }
  return "";
}

const ms = (t: Timestamp | undefined) => (t ? timestampMs(t) : 0);

// The order without its thumbnails' presigned URLs, which every read signs anew.
function unsigned(o: Order): Order {
  return { ...o, items: o.items.map((it) => ({ ...it, thumbnail: it.thumbnail && { ...it.thumbnail, url: "", thumbnailUrl: "", urlExpiresAt: undefined } })) };
}

/** What an order's card and its page do after one of its actions. */
export interface AfterAction {
  /** Reads the order again with the write's consistency token. */
  written(token: string): Promise<void>;
  /** Where a failed action's problem is shown. */
  problemAt(): HTMLElement;
}

/**
 * The parts an order's card and its page share: its items, the other
 * party, extra (the card's status steps, or nothing), the hint for what
 * happens next, and the caller's actions, each followed by after.
 */
export function orderParts(o: Order, role: OrderRole, extra: Node | null, after: AfterAction): (Node | null)[] {
  const buyer = role === OrderRole.BUYER;
  const other = buyer ? o.seller : o.buyer;
  return [
    h(
      "div",
      { class: "order-items" },
      o.items.map((it) => h("a", { class: "order-item", href: `/listings/${it.listingId}` }, photo(it.thumbnail, it.title, { thumb: true, class: "order-thumb", listingId: it.listingId, cover: true }), h("div", null, h("div", { class: "order-item-title" }, it.title), h("div", { class: "muted" }, formatMoney(it.price))))),
    ),
    other
      ? h("div", { class: "order-party" }, avatar(other.displayName, other.userId, "sm"), h("span", { class: "muted" }, buyer ? "Seller" : "Buyer"), h("a", { href: `/users/${other.userId}` }, other.displayName))
      : null,
    extra,
    h("p", { class: "order-hint" }, hint(o, role)),
    h(
      "div",
      { class: "order-actions" },
      actions(o, role).map((a) => {
        const b = h("button", { type: "button", class: `btn btn-${a.kind}`, dataset: { action: a.label } }, icon(a.icon), a.label);
        b.addEventListener("click", () => {
          if (a.confirm && !window.confirm(a.confirm)) return;
          void busy(b, async () => {
            try {
              const res = await a.run(o.orderId);
              rememberWrite(res.consistencyToken);
              await after.written(res.consistencyToken);
            } catch (err) {
              if (isAbort(err)) return;
              // The order moved on meanwhile (the other party, another tab):
              // read it again, so that it offers what its status allows now.
              if (hasReason(err, "ORDER_NOT_IN_STATE")) await after.written(consistencyToken()).catch(() => undefined);
              showProblem(after.problemAt(), err);
            }
          });
        });
        return b;
      }),
      buyer && o.status === OrderStatus.DELIVERED && o.seller
        ? h("a", { class: "btn btn-primary", href: `/users/${o.seller.userId}?review=${o.orderId}#review` }, "★ Review the seller")
        : null,
    ),
  ];
}

export function ordersPage(role: OrderRole) {
  return ({ query, signal }: Route): Node => {
    const me = session();
    const buyer = role === OrderRole.BUYER;
    const title = buyer ? "My orders" : "My sales";
    if (!me) {
      return h("div", { class: "page page-auth" }, h("div", { class: "auth-card card" }, h("h1", null, title), h("p", { class: "muted" }, "Sign in to see your orders and sales."), h("a", { class: "btn btn-primary btn-block", href: `/signin?next=${location.pathname}` }, "Sign in")));
    }
    const myId = me.userId;
    const placed = query.get("placed");
    const filter = h(
      "select",
      { name: "status", "aria-label": "Status" },
      h("option", { value: "" }, "All statuses"),
      [OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED].map((s) => h("option", { value: OrderStatus[s], selected: query.get("status") === OrderStatus[s] }, orderStatusLabels[s])),
    );
    const list = h("div", { class: "order-list", id: "orders" });
    const status = h("div");
    const none = h(
      "div",
      { hidden: true },
      buyer
        ? empty("No orders yet", "When you buy something, it shows up here.", h("a", { class: "btn btn-primary", href: "/" }, "Browse listings"))
        : empty("No sales yet", "When someone buys one of your items, it shows up here.", h("a", { class: "btn btn-primary", href: "/sell" }, "Sell an item")),
    );
    const more = h("button", { class: "btn btn-ghost", type: "button", hidden: true }, "Load more");
    const live = indicator();
    let next = "";

    // What the list shows, by order ID. Orders come from two sides, the
    // pages read with ListOrders and the stream, which can cross: an order
    // is only ever replaced by a state at least as new (by updated_at).
    const shown = new Map<string, { order: Order; el: HTMLElement }>();
    // The orders the stream put in since the last first-page read began: a
    // first page that does not have them was read before they happened.
    const streamed = new Set<string>();
    // Bumped by every first-page read, so that an older one that answers late is dropped.
    let generation = 0;
    // A first page has been read: `next` says whether older orders exist.
    let settled = false;

    const wanted = () => (filter.value ? OrderStatus[filter.value as keyof typeof OrderStatus] : OrderStatus.UNSPECIFIED);

    /** Shows o: in place of its older state, or at its place by date if new; removes it if it left the filter. */
    function put(o: Order, fromStream = false): void {
      const had = shown.get(o.orderId);
      if (had && (ms(o.updatedAt) < ms(had.order.updatedAt) || equals(OrderSchema, unsigned(o), unsigned(had.order)))) return;
      const party = buyer ? o.buyer : o.seller;
      const fits = (wanted() === OrderStatus.UNSPECIFIED || o.status === wanted()) && (!party || party.userId === myId);
      if (!fits) {
        had?.el.remove();
        shown.delete(o.orderId);
        showEmpty();
        return;
      }
      const el = card(o);
      if (had) {
        had.el.replaceWith(el);
      } else {
        // Newest first, as ListOrders pages. An order older than every one
        // shown, while older pages exist, belongs to one of those pages.
        const before = [...shown.values()].filter((s) => ms(s.order.createdAt) < ms(o.createdAt)).sort((a, b) => ms(b.order.createdAt) - ms(a.order.createdAt))[0];
        if (before) list.insertBefore(el, before.el);
        else if (fromStream && settled && next) return;
        else list.append(el);
      }
      shown.set(o.orderId, { order: o, el });
      if (fromStream) streamed.add(o.orderId);
      showEmpty();
    }

    function showEmpty(): void {
      none.hidden = !settled || list.childElementCount > 0;
    }

    function card(o: Order): HTMLElement {
      const errors = banner();
      const el: HTMLElement = h(
        "article",
        { class: `card order-card${o.orderId === placed ? " highlight" : ""}`, dataset: { orderId: o.orderId, status: OrderStatus[o.status] } },
        h(
          "div",
          { class: "order-head" },
          h(
            "div",
            null,
            h("div", { class: "muted small" }, `Order placed ${timeAgo(o.createdAt)} · `, h("a", { class: "order-link", href: `/orders/${o.orderId}` }, "Order details")),
            h("div", { class: "order-total" }, formatMoney(o.total)),
          ),
          orderBadge(o.status),
        ),
        ...orderParts(o, role, timeline(o), {
          // Re-read this order with the token: it shows the new status at
          // once, whether or not the stream has brought it yet.
          async written(token) {
            const fresh = await orders.getOrder({ orderId: o.orderId, consistencyToken: token }, { signal });
            if (fresh.order) put(fresh.order);
          },
          // On the card as it is now: the stream may have redrawn it meanwhile.
          problemAt: () => shown.get(o.orderId)?.el ?? el,
        }),
        errors,
      );
      return el;
    }

    /**
     * Reads a page; the first page is merged into what is shown (it drops
     * the orders it no longer has, but not those the stream brought since).
     * Returns false when a newer first-page read made this one moot.
     */
    async function read(first: boolean, token: string): Promise<boolean> {
      const gen = first ? ++generation : generation;
      if (first) streamed.clear();
      const res = await orders.listOrders({ role, status: wanted(), pageSize: 10, pageToken: first ? "" : next, consistencyToken: token }, { signal });
      if (gen !== generation) return false;
      if (first) {
        const ids = new Set(res.orders.map((o) => o.orderId));
        for (const [id, s] of shown) {
          if (!ids.has(id) && !streamed.has(id)) {
            s.el.remove();
            shown.delete(id);
          }
        }
      }
      res.orders.forEach((o) => put(o));
      next = res.nextPageToken;
      settled = true;
      if (first) status.replaceChildren();
      more.hidden = !next;
      showEmpty();
      return true;
    }

    async function load(first: boolean): Promise<void> {
      if (first) status.replaceChildren(loading());
      more.hidden = true;
      try {
        if (await read(first, consistencyToken())) status.replaceChildren();
      } catch (err) {
        if (!isAbort(err)) replace(status, failure(err, () => void load(first)));
      }
    }
    filter.addEventListener("change", () => {
      setQuery(new URLSearchParams(filter.value ? { status: filter.value } : {}));
      shown.clear();
      list.replaceChildren();
      settled = false;
      showEmpty();
      void load(true);
    });
    more.addEventListener("click", () => void load(false));

    // The stream starts first, so that nothing that changes while the first
    // page is read is missed: from the user's last write if there is one
    // (the page reads with the same token), else from now.
    const start = consistencyToken();
    let caughtUp = start !== "";
    void follow({
      signal,
      resumeToken: start,
      open: (resumeToken, signal, opened) => orders.watchOrders({ role, resumeToken }, { signal, onHeader: opened }),
      onMessage: async (msg) => {
        if (msg.resync) {
          // The stream cannot say what changed: read the list again, as of its
          // token. If that fails, the stream reopens from the previous token.
          await read(true, msg.resumeToken);
          caughtUp = true;
          return;
        }
        if (msg.order) put(msg.order, true);
        if (!caughtUp && msg.resumeToken) {
          // A stream from "now" and a first page read without a token may
          // leave a gap (the read side lags the writes a little): reading it
          // again as of the first token closes it. Should that read fail,
          // the next message tries again.
          caughtUp = await read(true, msg.resumeToken).then(
            () => true,
            () => false,
          );
        }
      },
      onState: live.onState,
    });
    void load(true);

    return h(
      "div",
      { class: "page page-orders" },
      h(
        "div",
        { class: "page-head" },
        h("div", null, h("div", { class: "page-title" }, h("h1", null, title), live.el), h("nav", { class: "tabs" }, h("a", { href: "/orders", class: buyer ? "active" : "" }, "Purchases"), h("a", { href: "/sales", class: buyer ? "" : "active" }, "Sales"))),
        filter,
      ),
      placed ? h("div", { class: "banner banner-success", role: "status" }, icon(icons.check), "Order placed. The item is reserved for you: pay to complete it.") : null,
      list,
      none,
      status,
      h("div", { class: "more" }, more),
    );
  };
}
