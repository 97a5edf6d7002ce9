// "Sell an item": the listing form, then each photo goes straight from the
// browser to the object store with a presigned POST, with a progress bar,
// and is confirmed with the API.

import { invalid, listings, rememberWrite, session } from "../api";
import { h, icon, icons } from "../dom";
import { banner, busy, clearProblems, field, showProblem } from "../forms";
import { listingFields } from "../listing-form";
import { navigate, type Route } from "../router";
import { postUpload } from "../upload";

const imageTypes = ["image/jpeg", "image/png", "image/webp"];

interface Photo {
  file: File;
  url: string;
  row: HTMLElement;
  bar: HTMLProgressElement;
  label: HTMLElement;
  done: boolean;
}

function sizeLabel(n: number): string {
  return n < 1024 * 1024 ? `${Math.max(1, Math.round(n / 1024))} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function sellPage({ signal }: Route): Node {
  if (!session()) {
    return h(
      "div",
      { class: "page page-auth" },
      h("div", { class: "auth-card card" }, h("h1", null, "Sell an item"), h("p", { class: "muted" }, "Sign in to list an item for sale."), h("a", { class: "btn btn-primary btn-block", href: "/signin?next=/sell" }, "Sign in"), h("p", { class: "auth-footer" }, "New here? ", h("a", { href: "/signup?next=/sell" }, "Create an account"))),
    );
  }

  const about = listingFields(signal);

  const photos: Photo[] = [];
  const photoList = h("div", { class: "photo-list" });
  const picker = h("input", { type: "file", name: "photos", accept: imageTypes.join(","), multiple: true, class: "visually-hidden", id: "f-photos" });
  const drop = h("label", { class: "dropzone", for: "f-photos" }, icon(icons.camera, 28), h("span", null, h("strong", null, "Add photos"), h("span", { class: "muted" }, " JPEG, PNG or WebP, up to 10 MB each")));
  picker.addEventListener("change", () => {
    for (const file of Array.from(picker.files ?? [])) {
      const url = URL.createObjectURL(file);
      const bar = h("progress", { class: "upload-progress", max: 1, value: 0 });
      const label = h("span", { class: "photo-status muted" }, sizeLabel(file.size));
      const p: Photo = { file, url, bar, label, done: false, row: h("div") };
      p.row = h(
        "div",
        { class: "photo-row", dataset: { state: "ready" } },
        h("img", { src: url, alt: "" }),
        h("div", { class: "photo-row-body" }, h("div", { class: "photo-name" }, file.name), bar, label),
        h("button", {
          type: "button",
          class: "icon-btn",
          "aria-label": `Remove ${file.name}`,
          onClick: () => {
            if (p.done) return;
            photos.splice(photos.indexOf(p), 1);
            p.row.remove();
            URL.revokeObjectURL(url);
          },
        }, icon(icons.x)),
      );
      photos.push(p);
      photoList.append(p.row);
    }
    picker.value = "";
  });
  signal.addEventListener("abort", () => photos.forEach((p) => URL.revokeObjectURL(p.url)));

  const submit = h("button", { class: "btn btn-primary btn-large", type: "submit", id: "publish" }, "Publish listing");
  const form = h(
    "form",
    { class: "form sell-form", novalidate: true },
    h(
      "div",
      { class: "sell-columns" },
      h(
        "section",
        { class: "card form-card" },
        h("h2", null, "About the item"),
        about.fields,
      ),
      h(
        "section",
        { class: "card form-card" },
        h("h2", null, "Photos"),
        h("p", { class: "muted" }, "Photos go straight to storage; the first one is the cover."),
        field("Photos", "photos", [picker, drop, photoList], { aliases: ["content_type", "size_bytes", "media_id"] }),
      ),
    ),
    banner(),
    h("div", { class: "form-actions" }, submit),
  );

  // Once the listing exists, a retry after a failed photo must not create
  // it again: it only uploads the photos that are not done.
  let listingId = "";
  let lastToken = "";

  async function uploadPhoto(p: Photo): Promise<void> {
    p.row.dataset.state = "uploading";
    p.label.textContent = "Preparing…";
    const up = await listings.createMediaUpload({ listingId, contentType: p.file.type, sizeBytes: BigInt(p.file.size) }, { signal });
    p.label.textContent = "Uploading…";
    await postUpload(up.uploadUrl, up.formFields, p.file, (f) => {
      p.bar.value = f;
      p.label.textContent = f < 1 ? `Uploading… ${Math.round(f * 100)}%` : "Checking…";
    }, signal);
    const res = await listings.confirmMediaUpload({ listingId, mediaId: up.mediaId }, { signal });
    lastToken = res.consistencyToken;
    p.done = true;
    p.row.dataset.state = "done";
    p.label.textContent = "Uploaded";
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submit, async () => {
      clearProblems(form);
      try {
        const fields = about.input();
        const bad = photos.find((p) => !imageTypes.includes(p.file.type));
        if (bad) throw invalid("content_type", `of ${bad.file.name} is not JPEG, PNG or WebP`);
        if (!listingId) {
          submit.textContent = "Publishing…";
          const res = await listings.createListing(fields, { signal });
          listingId = res.listingId;
          lastToken = res.consistencyToken;
          about.disable(true);
        }
        const pending = photos.filter((p) => !p.done);
        for (const [i, p] of pending.entries()) {
          submit.textContent = `Uploading photo ${i + 1} of ${pending.length}…`;
          try {
            await uploadPhoto(p);
          } catch (err) {
            p.row.dataset.state = "failed";
            p.label.textContent = "Failed";
            throw err;
          }
        }
        rememberWrite(lastToken);
        navigate(`/listings/${listingId}?listed=1`);
      } catch (err) {
        submit.textContent = listingId ? "Retry the photos" : "Publish listing";
        if (!signal.aborted) showProblem(form, err);
        if (listingId) {
          rememberWrite(lastToken);
          form.querySelector(".banner-error")?.append(h("div", null, "Your listing is saved. ", h("a", { href: `/listings/${listingId}` }, "View it"), " or retry the photos."));
        }
      }
    });
  });

  return h("div", { class: "page page-sell" }, h("h1", { tabindex: -1 }, "Sell an item"), h("p", { class: "muted lead" }, "Describe it honestly, add a few good photos, and set a fair price."), form);
}
