// "Edit listing", for its seller: the listing's fields, saved with
// UpdateListing against the version the form was filled from, naming only
// the fields that changed; and its photos, which can be moved (ReorderMedia)
// or removed (DeleteMedia).
//
// When the listing changed elsewhere meanwhile (another tab, another
// device), the save is refused (VERSION_CONFLICT): the page reads the newer
// version, fills in what the seller had not touched, keeps what they had,
// says what changed, and the next save goes against the new version.

import { Code, consistencyToken, isCode, listings, problem, rememberWrite, session } from "../api";
import { confirmStep, empty, failure, isAbort, loading } from "../components";
import { h, replace } from "../dom";
import { banner, busy, clearProblems, showProblem } from "../forms";
import { hasReason, reasonMessages } from "../errors";
import { ListingStatus, type Listing } from "../gen/swapmeet/v1/listing_pb";
import { signedImage } from "../images";
import { describe, fieldLabels, fieldNames, listingFields, readNewer, valuesOf, type FieldName, type ListingInput } from "../listing-form";
import { navigate, type Route } from "../router";

export function editPage({ params, signal }: Route): Node {
  const listingId = params.id;
  const me = session();
  const heading = h("h1", { tabindex: -1 }, "Edit listing");
  if (!me) {
    return h(
      "div",
      { class: "page page-auth" },
      h("div", { class: "auth-card card" }, heading, h("p", { class: "muted" }, "Sign in to edit your listings."), h("a", { class: "btn btn-primary btn-block", href: `/signin?next=${encodeURIComponent(location.pathname)}` }, "Sign in")),
    );
  }
  // The heading stays put (it has focus after a navigation); what is under it is redrawn.
  const body = h("div", null, loading());
  const root = h("div", { class: "page page-edit" }, heading, body);

  async function load(): Promise<void> {
    try {
      const res = await listings.getListing({ listingId, consistencyToken: consistencyToken() }, { signal });
      if (!res.listing) throw new Error("no listing");
      const l = res.listing;
      if (l.seller?.userId !== me!.userId) {
        replace(body, empty("Only its seller can edit this listing", null, h("a", { class: "btn btn-primary", href: `/listings/${listingId}` }, "View the listing")));
        return;
      }
      document.title = `Edit ${l.title} · Swapmeet`;
      replace(body, ...editor(l, signal));
    } catch (err) {
      if (isAbort(err)) return;
      if (isCode(err, Code.NotFound) || isCode(err, Code.InvalidArgument)) {
        replace(body, empty("This listing does not exist"));
        return;
      }
      replace(body, failure(err, () => void load()));
    }
  }
  void load();
  return root;
}

function editor(first: Listing, signal: AbortSignal): Node[] {
  // The version the form stands on: what the seller sees, and what a save
  // expects the listing to still be.
  let base = first;
  const about = listingFields(signal);
  about.fill(base);

  const version = h("span", { id: "edit-version" });
  const back = h("a", { href: `/listings/${base.listingId}` });
  const lead = h("p", { class: "muted lead" }, "Change what you like; only what you change is saved. ", back, " · ", version);
  // What changed elsewhere, after a refused save.
  const changes = h("div", { class: "banner banner-warning", id: "conflict", role: "alert", hidden: true });
  const notEditable = h("div", { class: "banner banner-error", role: "alert", hidden: true });
  const save = h("button", { class: "btn btn-primary btn-large", type: "submit", id: "save" }, "Save changes");
  const form = h(
    "form",
    { class: "form edit-form", novalidate: true },
    changes,
    h("section", { class: "card form-card" }, h("h2", null, "About the item"), about.fields),
    banner(),
    h("div", { class: "form-actions" }, h("a", { class: "btn btn-ghost btn-large", href: `/listings/${base.listingId}` }, "Cancel"), save),
  );
  const photos = photoManager(base, signal, (l) => adopt(l, false));

  function showBase(): void {
    version.textContent = `Editing version ${base.version}`;
    back.textContent = `View “${base.title}”`;
    form.dataset.version = String(base.version);
    const editable = base.status === ListingStatus.AVAILABLE;
    about.disable(!editable);
    save.disabled = !editable;
    notEditable.hidden = editable;
    replace(notEditable, editable ? null : h("strong", null, reasonMessages.LISTING_NOT_EDITABLE));
  }

  /**
   * Stands the form on a newer version: fields the seller has not touched
   * take the new values, their own edits stay, and what changed is listed.
   */
  function adopt(fresh: Listing, refused: boolean): void {
    if (fresh.version < base.version) return;
    const was = valuesOf(base);
    const now = valuesOf(fresh);
    const mine = about.values();
    const changed = fieldNames.filter((n) => was[n] !== now[n]);
    about.fill(fresh, changed.filter((n) => mine[n] === was[n]));
    const old = base;
    base = fresh;
    showBase();
    photos.show(fresh);
    if (!refused && changed.length === 0) return;
    const row = (n: FieldName) => {
      const kept = mine[n] !== was[n] && mine[n] !== now[n];
      return h("li", { dataset: { field: n } }, `${fieldLabels[n]}: ${describe(n, old)} → ${describe(n, fresh)}`, kept ? h("em", null, " (your change is kept below)") : null);
    };
    replace(
      changes,
      h("strong", null, refused ? reasonMessages.VERSION_CONFLICT : "This listing was changed elsewhere meanwhile. The form now shows the newer version; your changes are kept."),
      changed.length ? h("ul", { class: "change-list" }, changed.map(row)) : h("div", null, "None of the fields here changed."),
      h("div", null, `Version ${old.version} → ${fresh.version}.`),
    );
    changes.hidden = false;
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(save, async () => {
      clearProblems(form);
      const was = valuesOf(base);
      const now = about.values();
      const mask = fieldNames.filter((n) => now[n] !== was[n]);
      try {
        const input = about.input();
        if (mask.length === 0) {
          const b = form.querySelector<HTMLElement>(".banner-error")!;
          replace(b, h("strong", null, "You have not changed anything yet."));
          b.hidden = false;
          return;
        }
        const req: Partial<ListingInput> = {};
        for (const n of mask) (req as Record<string, unknown>)[n] = input[n];
        const res = await listings.updateListing({ listingId: base.listingId, expectedVersion: base.version, ...req, updateMask: { paths: mask } }, { signal });
        rememberWrite(res.consistencyToken);
        navigate(`/listings/${base.listingId}?saved=1`);
      } catch (err) {
        if (isAbort(err)) return;
        if (hasReason(err, "VERSION_CONFLICT")) {
          const fresh = await readNewer(base, signal).catch(() => undefined);
          if (fresh && fresh.version > base.version) {
            adopt(fresh, true);
            changes.scrollIntoView({ block: "nearest" });
            return;
          }
        }
        if (hasReason(err, "LISTING_NOT_EDITABLE")) {
          const fresh = await listings.getListing({ listingId: base.listingId }, { signal }).catch(() => undefined);
          if (fresh?.listing) adopt(fresh.listing, false);
        }
        showProblem(form, err);
      }
    });
  });

  showBase();
  return [lead, notEditable, h("div", { class: "sell-columns" }, form, photos.el)];
}

// ---- Photos --------------------------------------------------------------

interface PhotoManager {
  el: HTMLElement;
  /** Shows l's photos (after a save, or a newer read). */
  show(l: Listing): void;
}

/**
 * The listing's photos, first (the cover) first: each can move up or
 * down, or be removed after a confirmation. Every change is saved at once
 * and the photos are read again with its token; focus stays on the photo
 * that moved.
 */
function photoManager(first: Listing, signal: AbortSignal, newer: (l: Listing) => void): PhotoManager {
  let listing = first;
  const list = h("ol", { class: "photo-manage", id: "photo-order" });
  const status = h("p", { class: "visually-hidden", role: "status" });
  const errors = banner();
  const el = h(
    "section",
    { class: "card form-card", id: "photos", "aria-labelledby": "photos-title" },
    h("h2", { id: "photos-title" }, "Photos"),
    h("p", { class: "muted" }, "The first photo is the cover. Changes here are saved at once."),
    errors,
    list,
    status,
  );

  function render(focus?: { mediaId: string; action: string }): void {
    const media = listing.media;
    const editable = listing.status === ListingStatus.AVAILABLE;
    if (!media.length) {
      replace(list, h("li", { class: "muted" }, "This listing has no photos."));
      return;
    }
    replace(
      list,
      media.map((m, i) => {
        const n = i + 1;
        const up = h("button", { type: "button", class: "btn btn-small", dataset: { action: "up" }, "aria-label": `Move photo ${n} up`, disabled: !editable || i === 0 }, "↑ Up");
        const down = h("button", { type: "button", class: "btn btn-small", dataset: { action: "down" }, "aria-label": `Move photo ${n} down`, disabled: !editable || i === media.length - 1 }, "↓ Down");
        const remove = h("button", { type: "button", class: "btn btn-small btn-danger", dataset: { action: "remove" }, "aria-label": `Remove photo ${n}`, disabled: !editable }, "Remove");
        const actions = h("div", { class: "photo-item-actions" }, up, down, remove);
        const item = h(
          "li",
          { class: "photo-item", dataset: { mediaId: m.mediaId } },
          signedImage(m, { listingId: listing.listingId, mediaId: m.mediaId, thumb: true }, { alt: `Photo ${n}` }),
          h("div", { class: "photo-item-label" }, h("strong", null, `Photo ${n}`), i === 0 ? h("span", { class: "chip" }, "Cover") : null),
          actions,
        );
        up.addEventListener("click", () => void move(up, i, i - 1));
        down.addEventListener("click", () => void move(down, i, i + 1));
        remove.addEventListener("click", () =>
          confirmStep(actions, {
            question: `Remove photo ${n}? It is deleted for good.`,
            confirm: "Remove photo",
            cancel: "Keep it",
            restore: () => replace(actions, up, down, remove),
            restoreFocus: remove,
            run: () => removePhoto(m.mediaId),
          }),
        );
        return item;
      }),
    );
    if (focus) {
      const item = list.querySelector<HTMLElement>(`.photo-item[data-media-id="${focus.mediaId}"]`);
      const buttons = Array.from(item?.querySelectorAll<HTMLButtonElement>(".photo-item-actions button") ?? []);
      (buttons.find((b) => b.dataset.action === focus.action && !b.disabled) ?? buttons.find((b) => !b.disabled))?.focus();
    }
  }

  /** Reads the listing again as of token and shows its photos. */
  async function reread(token: string, focus?: { mediaId: string; action: string }): Promise<void> {
    const res = await listings.getListing({ listingId: listing.listingId, consistencyToken: token }, { signal });
    if (!res.listing) return;
    if (res.listing.version > listing.version) newer(res.listing);
    listing = res.listing;
    render(focus);
  }

  async function change(what: () => Promise<{ consistencyToken: string }>, done: string, focus?: { mediaId: string; action: string }): Promise<void> {
    clearProblems(el);
    try {
      const res = await what();
      rememberWrite(res.consistencyToken);
      await reread(res.consistencyToken, focus);
      status.textContent = done;
    } catch (err) {
      if (isAbort(err)) return;
      const p = problem(err);
      // The photos are not what this page thinks (MEDIA_SET_CHANGED), or
      // the listing can no longer change: show them as they are now.
      if (p.reason === "MEDIA_SET_CHANGED" || p.reason === "LISTING_NOT_EDITABLE" || isCode(err, Code.NotFound)) {
        await reread(consistencyToken()).catch(() => undefined);
      }
      showProblem(el, err);
    }
  }

  async function move(button: HTMLButtonElement, from: number, to: number): Promise<void> {
    const ids = listing.media.map((m) => m.mediaId);
    const [moved] = ids.splice(from, 1);
    ids.splice(to, 0, moved);
    await busy(button, () =>
      change(() => listings.reorderMedia({ listingId: listing.listingId, mediaIds: ids }, { signal }), `Photo moved to position ${to + 1}.`, { mediaId: moved, action: button.dataset.action ?? "" }),
    );
  }

  async function removePhoto(mediaId: string): Promise<void> {
    await change(() => listings.deleteMedia({ listingId: listing.listingId, mediaId }, { signal }), "Photo removed.");
    list.querySelector<HTMLButtonElement>(".photo-item-actions button:not(:disabled)")?.focus();
  }

  render();
  return {
    el,
    show(l) {
      if (l.version < listing.version) return;
      listing = l;
      render();
    },
  };
}
