// A seller's page: profile and rating, reviews, their items for sale, and
// "leave a review" for the viewer's delivered orders from this seller.

import { Code, consistencyToken, isCode, listings, orders, rememberWrite, reviews, session, users } from "../api";
import { empty, failure, isAbort, listingCard, loading } from "../components";
import { h, icon, icons, replace } from "../dom";
import { banner, busy, field, showProblem } from "../forms";
import { avatar, formatDate, stars, timeAgo } from "../format";
import { OrderRole, OrderStatus, type Order } from "../gen/swapmeet/v1/order_pb";
import type { Review } from "../gen/swapmeet/v1/review_pb";
import type { UserProfile } from "../gen/swapmeet/v1/user_pb";
import type { Route } from "../router";

export function sellerPage({ params, query, signal }: Route): Node {
  const sellerId = params.id;
  const root = h("div", { class: "page page-seller" }, loading());

  async function load(): Promise<void> {
    const token = consistencyToken();
    try {
      const [profile, revs, items] = await Promise.all([
        users.getUser({ userId: sellerId, consistencyToken: token }, { signal }),
        reviews.listSellerReviews({ sellerId, pageSize: 20, consistencyToken: token }, { signal }),
        listings.searchListings({ sellerId, pageSize: 24, consistencyToken: token }, { signal }),
      ]);
      if (!profile.user) throw new Error("no profile");
      document.title = `${profile.user.displayName} · Swapmeet`;
      const reviewList = h("div", { class: "review-list", id: "reviews" }, revs.reviews.map(reviewCard));
      const moreReviews = h("button", { class: "btn btn-ghost", type: "button", hidden: !revs.nextPageToken }, "More reviews");
      let next = revs.nextPageToken;
      moreReviews.addEventListener("click", () =>
        busy(moreReviews, async () => {
          const page = await reviews.listSellerReviews({ sellerId, pageSize: 20, pageToken: next }, { signal });
          reviewList.append(...page.reviews.map(reviewCard));
          next = page.nextPageToken;
          moreReviews.hidden = !next;
        }),
      );
      const reviewSlot = h("div", { id: "review" });
      replace(
        root,
        query.get("updated") === "1" && session()?.userId === sellerId ? h("div", { class: "banner banner-success", role: "status" }, icon(icons.check), "Your profile is saved.") : null,
        header(profile.user),
        reviewSlot,
        h(
          "div",
          { class: "seller-columns" },
          h(
            "section",
            null,
            h("h2", { class: "section-title" }, "Reviews ", h("span", { class: "muted" }, String(revs.ratingCount))),
            revs.reviews.length ? reviewList : empty("No reviews yet", "Reviews appear here once buyers rate their orders."),
            h("div", { class: "more" }, moreReviews),
          ),
          h(
            "section",
            null,
            h("h2", { class: "section-title" }, "For sale ", h("span", { class: "muted" }, String(profile.user.activeListingCount))),
            items.listings.length ? h("div", { class: "grid grid-compact" }, items.listings.map(listingCard)) : empty("Nothing for sale right now"),
          ),
        ),
      );
      void reviewForm(reviewSlot, profile.user, revs.reviews);
    } catch (err) {
      if (isAbort(err)) return;
      if (isCode(err, Code.NotFound) || isCode(err, Code.InvalidArgument)) {
        replace(root, empty("This member does not exist"));
        return;
      }
      replace(root, failure(err, () => void load()));
    }
  }

  function header(u: UserProfile): HTMLElement {
    return h(
      "section",
      { class: "card profile" },
      avatar(u.displayName, u.userId, "lg"),
      h(
        "div",
        { class: "profile-body" },
        h("h1", { id: "seller-name", tabindex: -1 }, u.displayName),
        h("div", { class: "profile-rating", id: "seller-rating" }, stars(u.ratingAverage, u.ratingCount)),
        u.bio ? h("p", { class: "bio" }, u.bio) : null,
        h("p", { class: "muted small" }, `Member since ${formatDate(u.joinedAt)}`),
        session()?.userId === u.userId
          ? h("div", { class: "profile-actions" }, h("a", { class: "btn btn-small", href: "/me/profile", id: "edit-profile" }, "Edit profile"), h("a", { class: "btn btn-small btn-ghost", href: "/me/listings" }, "My listings"))
          : null,
      ),
      h(
        "dl",
        { class: "stats" },
        h("div", null, h("dt", null, "Rating"), h("dd", null, u.ratingCount ? u.ratingAverage.toFixed(1) : "–")),
        h("div", null, h("dt", null, "Reviews"), h("dd", null, String(u.ratingCount))),
        h("div", null, h("dt", null, "For sale"), h("dd", null, String(u.activeListingCount))),
        h("div", null, h("dt", null, "Sold"), h("dd", null, String(u.soldCount))),
      ),
    );
  }

  // The viewer's delivered orders from this seller that have no review yet.
  async function reviewable(reviewed: Set<string>): Promise<Order[]> {
    const found: Order[] = [];
    let pageToken = "";
    for (let page = 0; page < 5; page++) {
      const res = await orders.listOrders({ role: OrderRole.BUYER, status: OrderStatus.DELIVERED, pageSize: 100, pageToken, consistencyToken: consistencyToken() }, { signal });
      found.push(...res.orders.filter((o) => o.seller?.userId === sellerId && !reviewed.has(o.orderId)));
      pageToken = res.nextPageToken;
      if (!pageToken) break;
    }
    return found;
  }

  async function reviewForm(slot: HTMLElement, seller: UserProfile, shown: Review[]): Promise<void> {
    const me = session();
    if (!me || me.userId === sellerId) return;
    let candidates: Order[];
    try {
      candidates = await reviewable(new Set(shown.map((r) => r.orderId)));
    } catch (err) {
      if (!isAbort(err)) console.warn("could not list orders to review", err);
      return;
    }
    if (!candidates.length) return;
    const wanted = query.get("review");
    const order = h(
      "select",
      { name: "order_id" },
      candidates.map((o) => h("option", { value: o.orderId, selected: o.orderId === wanted }, `${o.items.map((i) => i.title).join(", ")} · ${formatDate(o.createdAt)}`)),
    );
    let rating = 0;
    const starButtons = [1, 2, 3, 4, 5].map((n) =>
      h("button", { type: "button", class: "star-pick", role: "radio", "aria-checked": "false", "aria-label": `${n} star${n > 1 ? "s" : ""}`, dataset: { rating: String(n) } }, "★"),
    );
    const words = ["", "Poor", "Fair", "Good", "Very good", "Excellent"];
    const ratingWord = h("span", { class: "muted" }, "Choose a rating");
    starButtons.forEach((b, i) =>
      b.addEventListener("click", () => {
        rating = i + 1;
        starButtons.forEach((s, j) => {
          s.classList.toggle("on", j <= i);
          s.setAttribute("aria-checked", String(j === i));
        });
        ratingWord.textContent = words[rating];
      }),
    );
    const comment = h("textarea", { name: "comment", rows: 3, maxLength: 2000, placeholder: `How was buying from ${seller.displayName}?` });
    const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Post review");
    const form = h(
      "form",
      { class: "card review-form", novalidate: true },
      h("h2", null, `Review ${seller.displayName}`),
      h("p", { class: "muted" }, "Your order was delivered. Tell other buyers how it went."),
      candidates.length > 1 ? field("Order", "order_id", order) : null,
      field("Rating", "rating", h("div", { class: "star-picker", role: "radiogroup", "aria-label": "Rating" }, starButtons, ratingWord)),
      field("Comment", "comment", comment, { hint: "Optional, up to 2,000 characters." }),
      banner(),
      submit,
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void busy(submit, async () => {
        try {
          const res = await reviews.createReview({ orderId: order.value, rating, comment: comment.value.trim() });
          rememberWrite(res.consistencyToken);
          await load(); // with the token: the review and the new rating show at once
        } catch (err) {
          if (isCode(err, Code.AlreadyExists)) {
            await load(); // reviewed meanwhile (another tab): show it
            return;
          }
          showProblem(form, err);
        }
      });
    });
    slot.replaceChildren(form);
    if (location.hash === "#review") form.scrollIntoView({ block: "center" });
  }

  void load();
  return root;
}

function reviewCard(r: Review): HTMLElement {
  return h(
    "article",
    { class: "review card", dataset: { rating: String(r.rating) } },
    h(
      "div",
      { class: "review-head" },
      r.author ? avatar(r.author.displayName, r.author.userId, "sm") : null,
      h("div", null, r.author ? h("a", { href: `/users/${r.author.userId}`, class: "review-author" }, r.author.displayName) : "A buyer", h("div", { class: "muted small" }, timeAgo(r.createdAt))),
      h("span", { class: "review-stars", "aria-label": `${r.rating} out of 5` }, "★".repeat(r.rating), h("span", { class: "off" }, "★".repeat(5 - r.rating))),
    ),
    r.comment ? h("p", null, r.comment) : null,
  );
}
