import "./style.css";
import { onSessionChange, session, setSession, users } from "./api";
import { h, icon, icons, replace } from "./dom";
import { avatar } from "./format";
import { OrderRole } from "./gen/swapmeet/v1/order_pb";
import { signInPage, signUpPage } from "./pages/auth";
import { browsePage } from "./pages/browse";
import { listingPage } from "./pages/listing";
import { orderPage } from "./pages/order";
import { ordersPage } from "./pages/orders";
import { sellerPage } from "./pages/seller";
import { sellPage } from "./pages/sell";
import { fallback, navigate, refresh, route, start } from "./router";

route("/", browsePage);
route("/listings/:id", listingPage);
route("/sell", sellPage);
route("/signin", signInPage);
route("/signup", signUpPage);
route("/orders", ordersPage(OrderRole.BUYER));
route("/orders/:id", orderPage);
route("/sales", ordersPage(OrderRole.SELLER));
route("/users/:id", sellerPage);
fallback(() =>
  h("div", { class: "page empty" }, h("h1", null, "Page not found"), h("p", { class: "muted" }, "There is nothing at this address."), h("a", { class: "btn btn-primary", href: "/" }, "Browse listings")),
);

const nav = h("nav", { class: "nav", "aria-label": "Main" });

function renderNav(): void {
  const s = session();
  const here = location.pathname;
  const link = (href: string, label: string) => h("a", { href, class: here === href ? "nav-link active" : "nav-link" }, label);
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
    link("/orders", "Orders"),
    link("/sales", "Sales"),
    h("a", { href: "/sell", class: "btn btn-primary btn-small" }, icon(icons.plus, 16), "Sell an item"),
    h("a", { href: `/users/${s.userId}`, class: "nav-user", id: "me", title: "Your profile" }, avatar(s.displayName || "?", s.userId, "sm"), h("span", null, s.displayName || "Me")),
    signOut,
  );
}

const outlet = h("main", { class: "container", id: "main" });
document.getElementById("app")!.replaceChildren(
  h("header", { class: "topbar" }, h("div", { class: "container topbar-inner" }, h("a", { href: "/", class: "logo" }, h("img", { src: "/favicon.svg", alt: "", width: 28, height: 28 }), "swapmeet"), nav)),
  outlet,
  h("footer", { class: "footer" }, h("div", { class: "container" }, "Swapmeet · second-hand, first-rate. Every screen reads its own writes.")),
);

onSessionChange(() => {
  renderNav();
  refresh();
});
start(outlet, () => {
  renderNav();
  document.title = "Swapmeet"; // pages that load a name set their own
});
