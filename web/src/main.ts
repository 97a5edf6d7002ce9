import "./style.css";
import { onSessionChange, session, setSession, users } from "./api";
import { h, icon, icons, replace } from "./dom";
import { avatar } from "./format";
import { OrderRole } from "./gen/swapmeet/v1/order_pb";
import { signInPage, signUpPage } from "./pages/auth";
import { browsePage } from "./pages/browse";
import { listingPage } from "./pages/listing";
import { editPage } from "./pages/edit";
import { myListingsPage } from "./pages/mine";
import { orderPage } from "./pages/order";
import { ordersPage } from "./pages/orders";
import { profilePage } from "./pages/profile";
import { sellerPage } from "./pages/seller";
import { sellPage } from "./pages/sell";
import { fallback, focusHeading, navigate, refresh, route, start } from "./router";

route("/", browsePage);
route("/listings/:id", listingPage);
route("/listings/:id/edit", editPage);
route("/me/listings", myListingsPage);
route("/me/profile", profilePage);
route("/sell", sellPage);
route("/signin", signInPage);
route("/signup", signUpPage);
route("/orders", ordersPage(OrderRole.BUYER));
route("/orders/:id", orderPage);
route("/sales", ordersPage(OrderRole.SELLER));
route("/users/:id", sellerPage);
fallback(() =>
  h("div", { class: "page empty" }, h("h1", { tabindex: -1 }, "Page not found"), h("p", { class: "muted" }, "There is nothing at this address."), h("a", { class: "btn btn-primary", href: "/" }, "Browse listings")),
);

// The main navigation. On a narrow screen it folds away behind a menu
// button (aria-expanded says whether it is open); it closes again on
// navigation, on Escape and on a click elsewhere.
const nav = h("nav", { class: "nav", id: "nav", "aria-label": "Main" });
const menu = h("button", { type: "button", class: "menu-button", id: "menu-button", "aria-expanded": "false", "aria-controls": "nav" }, icon(icons.menu, 20), h("span", null, "Menu"));
const topbar = h("header", { class: "topbar" });

function setMenu(open: boolean): void {
  topbar.classList.toggle("nav-open", open);
  menu.setAttribute("aria-expanded", String(open));
}
menu.addEventListener("click", () => setMenu(menu.getAttribute("aria-expanded") !== "true"));
topbar.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && topbar.classList.contains("nav-open")) {
    setMenu(false);
    menu.focus();
  }
});
document.addEventListener("click", (e) => {
  if (topbar.classList.contains("nav-open") && !topbar.contains(e.target as Node)) setMenu(false);
});

function renderNav(): void {
  const s = session();
  const here = location.pathname;
  const link = (href: string, label: string) => h("a", { href, class: here === href ? "nav-link active" : "nav-link", "aria-current": here === href ? "page" : false }, label);
  if (!s) {
    replace(nav, link("/", "Browse"), link("/signin", "Sign in"), h("a", { href: "/signup", class: "btn btn-primary btn-small" }, "Sign up"));
    return;
  }
  const signOut = h("button", { type: "button", class: "nav-link link-button", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    await users.signOut({}).catch(() => undefined); // the session ends here either way
    setSession(null);
    navigate("/");
  });
  replace(
    nav,
    link("/", "Browse"),
    link("/me/listings", "My listings"),
    link("/orders", "Orders"),
    link("/sales", "Sales"),
    h("a", { href: "/sell", class: "btn btn-primary btn-small" }, icon(icons.plus, 16), "Sell an item"),
    h("a", { href: `/users/${s.userId}`, class: "nav-user", id: "me", title: "Your profile" }, avatar(s.displayName || "?", s.userId, "sm"), h("span", null, s.displayName || "Me")),
    signOut,
  );
}

const outlet = h("main", { class: "container", id: "main", tabindex: -1 });
// The first thing a keyboard reaches: past the navigation, to the page's heading.
const skip = h("a", { class: "skip-link", href: "#main" }, "Skip to content");
skip.addEventListener("click", (e) => {
  e.preventDefault(); // no navigation: the router would render the page again
  focusHeading(outlet);
});
replace(topbar, h("div", { class: "container topbar-inner" }, h("a", { href: "/", class: "logo" }, h("img", { src: "/favicon.svg", alt: "", width: 28, height: 28 }), "swapmeet"), menu, nav));
document.getElementById("app")!.replaceChildren(
  skip,
  topbar,
  outlet,
  h("footer", { class: "footer" }, h("div", { class: "container" }, "Swapmeet · second-hand, first-rate. Every screen reads its own writes.")),
);

onSessionChange((signedInOrOut) => {
  renderNav();
  if (signedInOrOut) refresh(); // a name change only shows in the navigation
});
start(outlet, () => {
  setMenu(false);
  renderNav();
  document.title = "Swapmeet"; // pages that load a name set their own
});
