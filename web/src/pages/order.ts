// One order, for its buyer or its seller: its items, the actions its status
// allows, and a timeline built from its history (HistoryService): who
// placed it, paid, shipped, confirmed delivery or cancelled, and when.
// While the page is open it follows the user's orders (WatchOrders) and
// reads the order and its history again, as of the stream's token, when
// this one changes.

import { consistencyToken, history, isCode, Code, orders, session } from "../api";
import { failure, isAbort, loading } from "../components";
import { h, replace } from "../dom";
import { banner } from "../forms";
import { formatDate, formatMoney, orderBadge } from "../format";
import { ObjectType, type HistoryEntry } from "../gen/swapmeet/v1/history_pb";
import { OrderRole, type Order } from "../gen/swapmeet/v1/order_pb";
import { follow, indicator } from "../live";
import type { Route } from "../router";
import { orderParts } from "./orders";

interface Step {
  step: string;
  label: string;
}

// The step an order's RPC takes ("swapmeet.v1.OrderService/MarkOrderPaid").
const rpcSteps: Record<string, Step> = {
  PlaceOrder: { step: "placed", label: "Placed" },
  MarkOrderPaid: { step: "paid", label: "Paid" },
  MarkOrderShipped: { step: "shipped", label: "Shipped" },
  ConfirmDelivery: { step: "delivered", label: "Delivered" },
  CancelOrder: { step: "cancelled", label: "Cancelled" },
};

// The step a status change takes, when no order RPC made it (a job, or a
// change made in SQL).
const statusSteps: Record<string, Step> = {
  PENDING: rpcSteps.PlaceOrder,
  PAID: rpcSteps.MarkOrderPaid,
  SHIPPED: rpcSteps.MarkOrderShipped,
  DELIVERED: rpcSteps.ConfirmDelivery,
  CANCELLED: rpcSteps.CancelOrder,
};

export function orderPage({ params, signal }: Route): Node {
  const me = session();
  if (!me) {
    return h("div", { class: "page page-auth" }, h("div", { class: "auth-card card" }, h("h1", null, "Order"), h("p", { class: "muted" }, "Sign in to see your orders and sales."), h("a", { class: "btn btn-primary btn-block", href: `/signin?next=${location.pathname}` }, "Sign in")));
  }
  const root = h("div", { class: "page page-order" }, loading());
  const live = indicator();
  // Bumped by every read, so that an older one that answers late is dropped.
  let generation = 0;

  /** Reads the order and its whole history as of token, and shows them. */
  async function read(token: string): Promise<void> {
    const gen = ++generation;
    const [res, entries] = await Promise.all([orders.getOrder({ orderId: params.id, consistencyToken: token }, { signal }), orderHistory(params.id, token, signal)]);
    if (gen !== generation || !res.order) return;
    replace(root, render(res.order, entries, me!.userId));
    document.title = "Order · Swapmeet";
  }

  function render(o: Order, entries: HistoryEntry[], myId: string): HTMLElement {
    const role = o.buyer?.userId === myId ? OrderRole.BUYER : OrderRole.SELLER;
    const buyer = role === OrderRole.BUYER;
    const errors = banner();
    const summary: HTMLElement = h(
      "article",
      { class: "card order-card" },
      h("div", { class: "order-head" }, h("div", null, h("div", { class: "muted small" }, `Order placed ${formatDate(o.createdAt, true)}`), h("div", { class: "order-total" }, formatMoney(o.total))), orderBadge(o.status)),
      ...orderParts(o, role, null, {
        // Read again with the write's token: the new status and its step
        // in the timeline show at once.
        written: (token) => read(token),
        // On the order as it is shown now: a read may have redrawn it.
        problemAt: () => (summary.isConnected ? summary : (root.querySelector<HTMLElement>(".order-card") ?? summary)),
      }),
      errors,
    );
    return h(
      "div",
      null,
      h("nav", { class: "crumbs" }, h("a", { href: buyer ? "/orders" : "/sales" }, buyer ? "Orders" : "Sales"), " / ", "Order"),
      h("div", { class: "page-head" }, h("div", { class: "page-title" }, h("h1", null, buyer ? "Your order" : "Your sale"), live.el)),
      h("div", { class: "order-layout" }, summary, h("section", { class: "card history order-history" }, h("h2", null, "Timeline"), steps(o, entries, myId))),
    );
  }

  async function load(): Promise<void> {
    // The tab's last write, if any: the order and its history both show it.
    const start = consistencyToken();
    try {
      await read(start);
    } catch (err) {
      if (isAbort(err)) return;
      if (isCode(err, Code.NotFound) || isCode(err, Code.InvalidArgument)) {
        replace(root, h("div", { class: "empty" }, h("h2", null, "This order does not exist"), h("p", { class: "muted" }, "Or it is neither your purchase nor your sale."), h("a", { class: "btn btn-primary", href: "/orders" }, "My orders")));
        return;
      }
      replace(root, failure(err, () => void load()));
      return;
    }
    // From the same token as the read, or from now: then the first token
    // the stream sends is read again, which closes the gap between the two.
    let caughtUp = start !== "";
    void follow({
      signal,
      resumeToken: start,
      open: (resumeToken, signal, opened) => orders.watchOrders({ role: OrderRole.UNSPECIFIED, resumeToken }, { signal, onHeader: opened }),
      onMessage: async (msg) => {
        // A failed read throws: the stream reopens from the previous token
        // and brings the change again.
        if (msg.resync || msg.order?.orderId === params.id || (!caughtUp && msg.resumeToken)) {
          await read(msg.resumeToken);
          caughtUp = true;
        }
      },
      onState: live.onState,
    });
  }
  void load();
  return root;
}

/** The order's whole history, newest first: an order has a handful of entries. */
async function orderHistory(orderId: string, token: string, signal: AbortSignal): Promise<HistoryEntry[]> {
  const out: HistoryEntry[] = [];
  let pageToken = "";
  do {
    const res = await history.listHistory({ objectType: ObjectType.ORDER, objectId: orderId, pageSize: 100, pageToken, consistencyToken: pageToken ? "" : token }, { signal });
    out.push(...res.entries);
    pageToken = res.nextPageToken;
  } while (pageToken && out.length < 1000);
  return out;
}

/**
 * The timeline, oldest first: one step per request (placing an order writes
 * the order and each of its lines, all under one request id), with who took
 * it, the buyer or the seller, from the entry's actor.
 */
function steps(o: Order, entries: HistoryEntry[], myId: string): HTMLElement {
  const groups: HistoryEntry[][] = [];
  for (const e of [...entries].reverse()) {
    const last = groups.at(-1)?.[0];
    if (last && e.requestId && last.requestId === e.requestId && last.rpc === e.rpc) groups.at(-1)!.push(e);
    else groups.push([e]);
  }
  const list = h("ol", { class: "steps", id: "order-timeline" });
  for (const g of groups) {
    const first = g[0];
    const status = g.flatMap((e) => e.changes).find((c) => c.field === "status");
    const method = first.rpc.startsWith("swapmeet.v1.OrderService/") ? first.rpc.slice(first.rpc.indexOf("/") + 1) : "";
    const step: Step =
      rpcSteps[method] ??
      (status && statusSteps[status.after]) ??
      (g.some((e) => e.operation === "CREATED") ? rpcSteps.PlaceOrder : { step: "changed", label: `Changed: ${[...new Set(g.flatMap((e) => e.changes.map((c) => c.field.split(".")[0])))].join(", ")}` });
    const actor = g.find((e) => e.actorId)?.actorId ?? "";
    list.append(
      h(
        "li",
        { class: g.some((e) => e.lost) ? "lost" : "", dataset: { step: step.step } },
        h("span", { class: "dot" }),
        h("div", null, h("strong", null, step.label), who(actor, o, myId)),
        h("time", null, formatDate(first.commitTime, true)),
        g.some((e) => e.lost) ? h("div", { class: "muted small" }, "Undone: recorded from a database history that was later abandoned.") : null,
      ),
    );
  }
  if (!groups.length) list.append(h("li", { class: "muted" }, "No history recorded yet."));
  return list;
}

// " by the buyer, Grace Hopper", " by the seller (you)"; "" without an actor.
function who(actor: string, o: Order, myId: string): string {
  if (actor === "system") return " by Swapmeet";
  for (const [role, party] of [["buyer", o.buyer], ["seller", o.seller]] as const) {
    if (actor && actor === party?.userId) return actor === myId ? ` by the ${role} (you)` : ` by the ${role}, ${party.displayName}`;
  }
  return "";
}
