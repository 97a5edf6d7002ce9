// My orders (as buyer) and my sales (as seller), with the status actions.

import { consistencyToken, orders, rememberWrite, session } from "../api";
import { empty, failure, isAbort, loading, photo } from "../components";
import { h, icon, icons, replace } from "../dom";
import { banner, busy, showProblem } from "../forms";
import { avatar, formatDate, formatMoney, orderBadge, orderStatusLabels, timeAgo } from "../format";
import { OrderRole, OrderStatus, type Order } from "../gen/swapmeet/v1/order_pb";
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
function actions(o: Order, role: OrderRole): Action[] {
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

function hint(o: Order, role: OrderRole): string {
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

export function ordersPage(role: OrderRole) {
  return ({ query, signal }: Route): Node => {
    const me = session();
    const buyer = role === OrderRole.BUYER;
    const title = buyer ? "My orders" : "My sales";
    if (!me) {
      return h("div", { class: "page page-auth" }, h("div", { class: "auth-card card" }, h("h1", null, title), h("p", { class: "muted" }, "Sign in to see your orders and sales."), h("a", { class: "btn btn-primary btn-block", href: `/signin?next=${location.pathname}` }, "Sign in")));
    }
    const placed = query.get("placed");
    const filter = h(
      "select",
      { name: "status", "aria-label": "Status" },
      h("option", { value: "" }, "All statuses"),
      [OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED].map((s) => h("option", { value: OrderStatus[s], selected: query.get("status") === OrderStatus[s] }, orderStatusLabels[s])),
    );
    const list = h("div", { class: "order-list", id: "orders" });
    const status = h("div");
    const more = h("button", { class: "btn btn-ghost", type: "button", hidden: true }, "Load more");
    let next = "";

    function card(o: Order): HTMLElement {
      const other = buyer ? o.seller : o.buyer;
      const errors = banner();
      const el: HTMLElement = h(
        "article",
        { class: `card order-card${o.orderId === placed ? " highlight" : ""}`, dataset: { orderId: o.orderId, status: OrderStatus[o.status] } },
        h(
          "div",
          { class: "order-head" },
          h("div", null, h("div", { class: "muted small" }, `Order placed ${timeAgo(o.createdAt)}`), h("div", { class: "order-total" }, formatMoney(o.total))),
          orderBadge(o.status),
        ),
        h(
          "div",
          { class: "order-items" },
          o.items.map((it) => h("a", { class: "order-item", href: `/listings/${it.listingId}` }, photo(it.thumbnail, it.title, { thumb: true, class: "order-thumb" }), h("div", null, h("div", { class: "order-item-title" }, it.title), h("div", { class: "muted" }, formatMoney(it.price))))),
        ),
        other
          ? h("div", { class: "order-party" }, avatar(other.displayName, other.userId, "sm"), h("span", { class: "muted" }, buyer ? "Seller" : "Buyer"), h("a", { href: `/users/${other.userId}` }, other.displayName))
          : null,
        timeline(o),
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
                  // Re-read this order with the token: it shows the new status at once.
                  const fresh = await orders.getOrder({ orderId: o.orderId, consistencyToken: res.consistencyToken }, { signal });
                  if (fresh.order) el.replaceWith(card(fresh.order));
                } catch (err) {
                  if (!isAbort(err)) showProblem(el, err);
                }
              });
            });
            return b;
          }),
          buyer && o.status === OrderStatus.DELIVERED && o.seller
            ? h("a", { class: "btn btn-primary", href: `/users/${o.seller.userId}?review=${o.orderId}#review` }, "★ Review the seller")
            : null,
        ),
        errors,
      );
      return el;
    }

    async function load(reset: boolean): Promise<void> {
      if (reset) {
        next = "";
        list.replaceChildren();
        status.replaceChildren(loading());
      }
      more.hidden = true;
      try {
        const res = await orders.listOrders(
          { role, status: filter.value ? OrderStatus[filter.value as keyof typeof OrderStatus] : OrderStatus.UNSPECIFIED, pageSize: 10, pageToken: next, consistencyToken: consistencyToken() },
          { signal },
        );
        list.append(...res.orders.map(card));
        next = res.nextPageToken;
        more.hidden = !next;
        status.replaceChildren();
        if (list.childElementCount === 0) {
          status.replaceChildren(
            buyer
              ? empty("No orders yet", "When you buy something, it shows up here.", h("a", { class: "btn btn-primary", href: "/" }, "Browse listings"))
              : empty("No sales yet", "When someone buys one of your items, it shows up here.", h("a", { class: "btn btn-primary", href: "/sell" }, "Sell an item")),
          );
        }
      } catch (err) {
        if (!isAbort(err)) replace(status, failure(err, () => void load(reset)));
      }
    }
    filter.addEventListener("change", () => {
      setQuery(new URLSearchParams(filter.value ? { status: filter.value } : {}));
      void load(true);
    });
    more.addEventListener("click", () => void load(false));
    void load(true);

    return h(
      "div",
      { class: "page page-orders" },
      h(
        "div",
        { class: "page-head" },
        h("div", null, h("h1", null, title), h("nav", { class: "tabs" }, h("a", { href: "/orders", class: buyer ? "active" : "" }, "Purchases"), h("a", { href: "/sales", class: buyer ? "" : "active" }, "Sales"))),
        filter,
      ),
      placed ? h("div", { class: "banner banner-success", role: "status" }, icon(icons.check), "Order placed. The item is reserved for you: pay to complete it.") : null,
      list,
      status,
      h("div", { class: "more" }, more),
    );
  };
}
