// Form building blocks, and showing server errors next to their fields.

import { problem, type Problem } from "./api";
import { h, type Child } from "./dom";

/**
 * A labelled field. `name` is the request field it maps to (the server's
 * name for it, e.g. "display_name"), so that an InvalidArgument field
 * violation lands right under it. `aliases` are other request fields shown
 * here too (the photo picker shows "content_type" and "size_bytes").
 */
export function field(label: string, name: string, control: Child, opts: { hint?: string; aliases?: string[]; class?: string } = {}): HTMLElement {
  const id = `f-${name.replace(/[^a-z0-9]+/gi, "-")}`;
  const first = Array.isArray(control) ? control[0] : control;
  if (first instanceof HTMLElement && !first.id && /^(INPUT|SELECT|TEXTAREA)$/.test(first.tagName)) first.id = id;
  return h(
    "div",
    { class: `field ${opts.class ?? ""}`, dataset: { field: name, label, aliases: (opts.aliases ?? []).join(" ") } },
    h("label", { for: id }, label),
    control,
    opts.hint ? h("p", { class: "hint" }, opts.hint) : null,
  );
}

/** A form-level error banner, filled by showProblem. */
export function banner(): HTMLElement {
  return h("div", { class: "banner banner-error", role: "alert", hidden: true });
}

export function clearProblems(root: HTMLElement): void {
  root.querySelectorAll(".field-error").forEach((e) => e.remove());
  root.querySelectorAll(".field.invalid").forEach((e) => e.classList.remove("invalid"));
  root.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  root.querySelectorAll<HTMLElement>(".banner-error").forEach((b) => {
    b.hidden = true;
    b.replaceChildren();
  });
}

/** The field element a violation belongs to: by exact name, else by its parent path. */
function fieldFor(root: HTMLElement, path: string): HTMLElement | null {
  const candidates = [path];
  for (let p = path; /[.[]/.test(p); ) {
    p = p.replace(/(\.[^.[]*|\[[^\]]*\])$/, "");
    candidates.push(p);
  }
  const fields = Array.from(root.querySelectorAll<HTMLElement>(".field[data-field]"));
  for (const c of candidates) {
    const f = fields.find((e) => e.dataset.field === c || (e.dataset.aliases ?? "").split(" ").includes(c));
    if (f) return f;
  }
  return null;
}

/**
 * Shows an error: each field violation under its field, and the rest, with
 * the message, in the form's banner. Returns the problem, for callers that
 * want to react to the code.
 */
export function showProblem(root: HTMLElement, err: unknown): Problem {
  clearProblems(root);
  if (err instanceof FieldError) {
    const f = fieldFor(root, err.field);
    if (f) {
      mark(f, err.field, err.message);
      return { message: err.message, fields: new Map([[err.field, err.message]]), reason: "" };
    }
  }
  const p = problem(err);
  const unplaced: string[] = [];
  let firstInvalid: HTMLElement | null = null;
  for (const [path, description] of p.fields) {
    const f = fieldFor(root, path);
    if (!f) {
      unplaced.push(`${path.replace(/_/g, " ")} ${description}`);
      continue;
    }
    // "Title is required", "Price amount must be…", "“size” must be…".
    const control = mark(f, path, `${describePath(path, f.dataset.field ?? "", f.dataset.label ?? "")} ${description}`);
    firstInvalid ??= control;
  }
  const b = root.querySelector<HTMLElement>(".banner-error");
  if (b) {
    b.replaceChildren(h("strong", null, p.message), ...unplaced.map((u) => h("div", null, sentence(u))));
    b.hidden = false;
  }
  firstInvalid?.focus();
  return p;
}

/** An error that belongs to one field of the form, shown there as is. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function mark(f: HTMLElement, path: string, message: string): HTMLElement | null {
  f.classList.add("invalid");
  f.append(h("p", { class: "field-error", role: "alert", dataset: { for: path } }, sentence(message)));
  const control = f.querySelector<HTMLElement>("input, select, textarea");
  control?.setAttribute("aria-invalid", "true");
  return control;
}

function describePath(path: string, base: string, label: string): string {
  if (path === base) return label;
  const key = /\[(.*)\]$/.exec(path);
  if (key) return `“${key[1]}”`;
  const rest = path.startsWith(base + ".") ? path.slice(base.length + 1) : path;
  const words: Record<string, string> = {
    amount_minor: `${label} amount`,
    currency_code: `${label} currency`,
    content_type: "The file type",
    size_bytes: "The file size",
  };
  return words[rest] ?? `${label} ${rest.replace(/_/g, " ")}`;
}

function sentence(s: string): string {
  s = s.trim();
  if (!s) return s;
  s = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** Runs f with the button disabled and showing a spinner. */
export async function busy<T>(button: HTMLButtonElement, f: () => Promise<T>): Promise<T> {
  button.disabled = true;
  button.classList.add("busy");
  button.setAttribute("aria-busy", "true");
  try {
    return await f();
  } finally {
    button.disabled = false;
    button.classList.remove("busy");
    button.removeAttribute("aria-busy");
  }
}
