// Formatting shared by the pages: money, dates, enums, ratings, avatars.

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { h } from "./dom";
import type { Money } from "./gen/swapmeet/v1/common_pb";
import { Condition, ListingStatus } from "./gen/swapmeet/v1/listing_pb";
import { OrderStatus } from "./gen/swapmeet/v1/order_pb";

export const currencies = ["EUR", "USD", "GBP", "CHF", "SEK"];
export const defaultCurrency = "EUR";

function fractionDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

export function formatMoney(m: Money | undefined): string {
  if (!m) return "";
  const digits = fractionDigits(m.currencyCode);
  const value = Number(m.amountMinor) / 10 ** digits;
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency: m.currencyCode }).format(value);
  } catch {
    return `${value.toFixed(digits)} ${m.currencyCode}`;
  }
}

/** An amount as a price field shows it: 1250n in EUR → "12.50". */
export function amountInput(m: Money | undefined): string {
  if (!m) return "";
  const digits = fractionDigits(m.currencyCode);
  const s = m.amountMinor.toString().padStart(digits + 1, "0");
  return digits ? `${s.slice(0, -digits)}.${s.slice(-digits)}` : s;
}

/**
 * "12.50" in EUR → 1250n minor units. Returns undefined for an empty input
 * and null for one that is not an amount, so the caller can tell the two apart.
 */
export function parseAmount(s: string, currency: string): bigint | null | undefined {
  s = s.trim().replace(",", ".");
  if (s === "") return undefined;
  const digits = fractionDigits(currency);
  const m = /^(\d{1,12})(?:\.(\d*))?$/.exec(s);
  if (!m || (m[2] ?? "").length > digits) return null;
  return BigInt(m[1]) * 10n ** BigInt(digits) + BigInt((m[2] ?? "").padEnd(digits, "0") || "0");
}

export function formatDate(t: Timestamp | undefined, withTime = false): string {
  if (!t) return "";
  return timestampDate(t).toLocaleString("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    ...(withTime ? { hour: "2-digit", minute: "2-digit" } : {}),
  });
}

export function timeAgo(t: Timestamp | undefined): string {
  if (!t) return "";
  const s = (Date.now() - timestampDate(t).getTime()) / 1000;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.floor(s / 86400)} d ago`;
  return formatDate(t);
}

export const conditionLabels: Record<number, string> = {
  [Condition.NEW]: "New",
  [Condition.LIKE_NEW]: "Like new",
  [Condition.GOOD]: "Good",
  [Condition.FAIR]: "Fair",
  [Condition.POOR]: "Poor",
};

export const listingStatusLabels: Record<number, string> = {
  [ListingStatus.AVAILABLE]: "Available",
  [ListingStatus.SOLD]: "Sold",
  [ListingStatus.WITHDRAWN]: "Withdrawn",
};

export const orderStatusLabels: Record<number, string> = {
  [OrderStatus.PENDING]: "Awaiting payment",
  [OrderStatus.PAID]: "Paid",
  [OrderStatus.SHIPPED]: "Shipped",
  [OrderStatus.DELIVERED]: "Delivered",
  [OrderStatus.CANCELLED]: "Cancelled",
};

const orderStatusTone: Record<number, string> = {
  [OrderStatus.PENDING]: "amber",
  [OrderStatus.PAID]: "blue",
  [OrderStatus.SHIPPED]: "violet",
  [OrderStatus.DELIVERED]: "green",
  [OrderStatus.CANCELLED]: "grey",
};

export function orderBadge(s: OrderStatus): HTMLElement {
  return h("span", { class: `badge badge-${orderStatusTone[s] ?? "grey"}`, dataset: { status: OrderStatus[s] } }, orderStatusLabels[s] ?? "Unknown");
}

export function listingBadge(s: ListingStatus): HTMLElement | null {
  if (s === ListingStatus.AVAILABLE) return null;
  return h("span", { class: `badge ${s === ListingStatus.SOLD ? "badge-red" : "badge-grey"}`, dataset: { status: ListingStatus[s] } }, listingStatusLabels[s] ?? "");
}

/** Five stars, filled to the nearest half, with the average and count. */
export function stars(average: number, count: number, opts: { compact?: boolean } = {}): HTMLElement {
  const rounded = Math.round(average * 2) / 2;
  const row = h("span", { class: "stars", "aria-hidden": "true" });
  for (let i = 1; i <= 5; i++) {
    row.append(h("span", { class: rounded >= i ? "star full" : rounded >= i - 0.5 ? "star half" : "star" }, "★"));
  }
  const label = count === 0 ? "No reviews yet" : `${average.toFixed(1)} out of 5 from ${count} review${count === 1 ? "" : "s"}`;
  return h(
    "span",
    { class: "rating", title: label, "aria-label": label, dataset: { average: average.toFixed(1), count: String(count) } },
    row,
    count === 0
      ? opts.compact
        ? null
        : h("span", { class: "muted" }, "No reviews yet")
      : h("span", { class: "rating-text" }, h("strong", null, average.toFixed(1)), h("span", { class: "muted" }, ` (${count})`)),
  );
}

const avatarColors = ["#0f766e", "#7c3aed", "#c2410c", "#2563eb", "#be185d", "#4d7c0f", "#b45309", "#0369a1"];

export function avatar(name: string, id: string, size: "sm" | "md" | "lg" = "md"): HTMLElement {
  const initials = name.trim().split(/\s+/).slice(0, 2).map((w) => w[0]?.toUpperCase() ?? "").join("") || "?";
  let hash = 0;
  for (const c of id) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return h("span", { class: `avatar avatar-${size}`, style: `background:${avatarColors[hash % avatarColors.length]}`, "aria-hidden": "true" }, initials);
}
