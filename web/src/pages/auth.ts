// Sign up and sign in.

import { rememberWrite, setSession, users } from "../api";
import { h } from "../dom";
import { hasReason, reasonMessages } from "../errors";
import { banner, busy, field, FieldError, showProblem } from "../forms";
import { navigate, type Route } from "../router";

function safeNext(query: URLSearchParams): string {
  const next = query.get("next") ?? "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

function authCard(title: string, subtitle: string, form: HTMLFormElement, footer: Node): HTMLElement {
  return h("div", { class: "page page-auth" }, h("div", { class: "auth-card card" }, h("h1", { tabindex: -1 }, title), h("p", { class: "muted" }, subtitle), form, h("p", { class: "auth-footer" }, footer)));
}

export function signUpPage({ query }: Route): Node {
  const name = h("input", { name: "display_name", autocomplete: "nickname", required: true, maxLength: 64 });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true });
  const submit = h("button", { class: "btn btn-primary btn-block", type: "submit" }, "Create account");
  const form = h(
    "form",
    { class: "form", novalidate: true },
    field("Your name", "display_name", name, { hint: "Shown to buyers and sellers." }),
    field("Email", "email", email),
    field("Password", "password", password, { hint: "At least 8 characters." }),
    banner(),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submit, async () => {
      try {
        const res = await users.signUp({ displayName: name.value.trim(), email: email.value.trim(), password: password.value });
        rememberWrite(res.consistencyToken);
        setSession({ userId: res.userId, token: res.sessionToken, displayName: res.user?.displayName ?? name.value.trim() });
        navigate(safeNext(query));
      } catch (err) {
        // Said under the email, like any other problem with it.
        showProblem(form, hasReason(err, "EMAIL_TAKEN") ? new FieldError("email", reasonMessages.EMAIL_TAKEN) : err);
      }
    });
  });
  return authCard("Create your account", "Sell what you no longer need, find what you do.", form, h("span", null, "Already have an account? ", h("a", { href: `/signin${location.search}` }, "Sign in")));
}

export function signInPage({ query }: Route): Node {
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { class: "btn btn-primary btn-block", type: "submit" }, "Sign in");
  const form = h("form", { class: "form", novalidate: true }, field("Email", "email", email), field("Password", "password", password), banner(), submit);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submit, async () => {
      try {
        const res = await users.signIn({ email: email.value.trim(), password: password.value });
        // The answer names who signed in: no second call to learn it.
        setSession({ userId: res.userId, token: res.sessionToken, displayName: res.user?.displayName ?? "" });
        navigate(safeNext(query));
      } catch (err) {
        showProblem(form, err);
      }
    });
  });
  return authCard("Welcome back", "Sign in to buy, sell and follow your orders.", form, h("span", null, "New to Swapmeet? ", h("a", { href: `/signup${location.search}` }, "Create an account")));
}
