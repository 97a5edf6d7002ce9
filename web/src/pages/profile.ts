// "Edit your profile": the name buyers and sellers see, and a short bio.
// UpdateProfile changes only the fields it is given, so only what changed
// is sent; the new name reaches the user's listings, orders and reviews.

import { consistencyToken, rememberWrite, session, setSession, users } from "../api";
import { failure, isAbort, loading } from "../components";
import { h, replace } from "../dom";
import { banner, busy, clearProblems, field, showProblem } from "../forms";
import type { UserProfile } from "../gen/swapmeet/v1/user_pb";
import { navigate, type Route } from "../router";

export function profilePage({ signal }: Route): Node {
  const me = session();
  const heading = h("h1", { tabindex: -1 }, "Edit your profile");
  if (!me) {
    return h(
      "div",
      { class: "page page-auth" },
      h("div", { class: "auth-card card" }, heading, h("p", { class: "muted" }, "Sign in to edit your profile."), h("a", { class: "btn btn-primary btn-block", href: "/signin?next=/me/profile" }, "Sign in")),
    );
  }
  // The heading stays put (it has focus after a navigation); what is under it is redrawn.
  const body = h("div", null, loading());
  const card = h("div", { class: "auth-card card" }, heading, body);
  const root = h("div", { class: "page page-auth page-profile" }, card);

  async function load(): Promise<void> {
    try {
      const res = await users.getUser({ userId: me!.userId, consistencyToken: consistencyToken() }, { signal });
      if (!res.user) throw new Error("no profile");
      replace(body, h("p", { class: "muted" }, "How others see you on Swapmeet."), form(res.user));
    } catch (err) {
      if (!isAbort(err)) replace(body, failure(err, () => void load()));
    }
  }

  function form(u: UserProfile): HTMLFormElement {
    const name = h("input", { name: "display_name", autocomplete: "nickname", maxLength: 64, value: u.displayName });
    const bio = h("textarea", { name: "bio", rows: 5, maxLength: 500, placeholder: "A few words about you, what you sell, how you ship…" });
    bio.value = u.bio;
    const save = h("button", { class: "btn btn-primary btn-block", type: "submit", id: "save-profile" }, "Save profile");
    const f = h(
      "form",
      { class: "form", novalidate: true },
      field("Your name", "display_name", name, { hint: "Shown to buyers and sellers; 1 to 64 characters." }),
      field("Bio", "bio", bio, { hint: "Up to 500 characters. Leave it empty to have none." }),
      banner(),
      save,
      h("a", { class: "btn btn-ghost btn-block", href: `/users/${u.userId}` }, "Cancel"),
    );
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      void busy(save, async () => {
        clearProblems(f);
        const displayName = name.value.trim();
        const newBio = bio.value.trim();
        const req = {
          ...(displayName !== u.displayName ? { displayName } : {}),
          ...(newBio !== u.bio ? { bio: newBio } : {}),
        };
        if (Object.keys(req).length === 0) {
          navigate(`/users/${u.userId}`);
          return;
        }
        try {
          const res = await users.updateProfile(req, { signal });
          rememberWrite(res.consistencyToken);
          const s = session();
          if (s && req.displayName !== undefined) setSession({ ...s, displayName });
          navigate(`/users/${u.userId}?updated=1`);
        } catch (err) {
          if (!isAbort(err)) showProblem(f, err);
        }
      });
    });
    return f;
  }

  void load();
  return root;
}
