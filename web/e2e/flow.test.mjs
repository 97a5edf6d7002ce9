// The whole product through the browser: Debian's Chromium, driven by
// playwright-core, against a private `swapmeet serve` + `swapmeet cdc`
// (started by ./stack, which sets E2E_BASE_URL, and makes presigned image
// URLs short-lived: E2E_MEDIA_GET_EXPIRY). Run by `make test`, or
// `make e2e`.
//
// Everything runs twice: at desktop size (1280×860), then on a phone's
// screen (390×844), where the navigation folds behind a menu button and
// every screenshot also checks that nothing is wider than the screen.
//
//   A signs up (after fixing the fields the server refused) and lists an
//     item with two photos, uploaded straight to MinIO with a presigned POST;
//   B finds it by keyword, buys it and pays;
//   A signs out and in again, and ships it;
//   B confirms delivery and leaves a 5-star review;
//   A's seller page shows the rating;
//   C, a would-be second buyer, sees the item as sold.
// Then, live updates: with three browsers open (a seller, a buyer and a
// visitor who is not signed in), pages change as the data does, without a
// reload: the seller edits the price and title in the edit form, and the
// buyer's and the visitor's listing pages show them, with the change
// (old → new) in the History; the buyer buys at the new price and the
// visitor sees "Sold"; the seller's sales page shows the new order and then
// its payment, the buyer's orders page shows it shipped; the order's page
// has a timeline, from its history, of who placed, paid, shipped and
// received it, and the seller's open one adds the delivery the buyer
// confirms there. Then browsing loads the next page as the user scrolls.
// Then a seller runs the shop: the skip link comes first and focus follows
// navigation to each page's heading; "My listings" pages through all of
// them; a withdrawn listing is listed there as withdrawn; photos are moved
// (with the keyboard too) and removed, and the listing shows the new
// order; the profile's new name and bio show on the seller page; two tabs
// edit the same version, and the second is shown the first's change and
// saves its own on top; a buyer who clicks Buy on an item sold meanwhile is
// told so; and a listing page kept open past its image URLs' lifetime
// still shows its photos, from refreshed URLs, while MinIO refuses the old
// ones. Last: queries went as GET and writes as POST; no page threw.
//
// Every step saves a screenshot. Waits are on conditions (Playwright's
// auto-waiting locators, waitForFunction), never on fixed sleeps.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const baseURL = process.env.E2E_BASE_URL;
if (!baseURL) throw new Error("E2E_BASE_URL is unset: run through `make e2e` (web/e2e/stack), which starts the server");
const shots = resolve(process.env.E2E_SCREENSHOTS ?? join(process.env.E2E_OUTPUT ?? "e2e/output", "screenshots"));
mkdirSync(shots, { recursive: true });

// How long the stack's image URLs last ("20s"); unset: the server's default.
const urlLifetime = parseDuration(process.env.E2E_MEDIA_GET_EXPIRY ?? "");

const sizes = [
  { name: "desktop", prefix: "", viewport: { width: 1280, height: 860 }, phone: false },
  { name: "phone", prefix: "phone-", viewport: { width: 390, height: 844 }, phone: true },
];

const run = Date.now().toString(36);
const password = "correct horse battery";
const peopleFor = (size) => {
  const mail = (who) => `${who}.${run}.${size.name}@example.com`;
  return {
    a: { name: "Ada Lovelace", email: mail("ada") },
    b: { name: "Grace Hopper", email: mail("grace") },
    c: { name: "Alan Turing", email: mail("alan") },
    d: { name: "Hedy Lamarr", email: mail("hedy") },
    e: { name: "Claude Shannon", email: mail("claude") },
    s: { name: "Margaret Hamilton", email: mail("margaret") },
    q: { name: "Katherine Johnson", email: mail("katherine") },
  };
};
const item = {
  title: "Leica M3 rangefinder camera",
  description: "Classic 35 mm rangefinder from 1958, double-stroke. Shutter speeds are accurate, the viewfinder is bright and clean. Comes with the original leather case and strap.",
  category: "cameras",
  condition: "LIKE_NEW",
  price: "450",
  attributes: [["brand", "Leica"], ["lens_mount", "M-mount"]],
};

// What the app says for a refusal's reason (web/src/errors.ts): the test
// checks the very sentence, which comes from the reason, not the server's text.
const says = {
  LISTING_SOLD: "Sorry, this item has just been sold to someone else.",
  VERSION_CONFLICT: "This listing was changed elsewhere while you were editing it. Its newer version is shown: check your changes and save again.",
};

let browser;
const pageErrors = [];
const requests = [];

let current; // the page last acted on, for a screenshot on failure
let failed = false;

async function newUser(size) {
  const context = await browser.newContext({ baseURL, viewport: size.viewport, deviceScaleFactor: 1, locale: "en-GB" });
  const page = await newTab(context);
  return { context, page };
}

async function newTab(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (err) => pageErrors.push(err));
  page.on("request", (r) => requests.push({ method: r.method(), url: r.url() }));
  return page;
}

// Screenshots are numbered in the order they are taken, per screen size
// (phone ones start with "phone-"), so their names stay put from run to run.
const counters = new Map();
async function shot(page, size, name) {
  const n = (counters.get(size.name) ?? 0) + 1;
  counters.set(size.name, n);
  const file = join(shots, `${size.prefix}${String(n).padStart(2, "0")}-${name}.png`);
  // Let the images in view finish, so the shot is not half-drawn.
  await page.waitForFunction(() =>
    Array.from(document.images).every((img) => {
      const r = img.getBoundingClientRect();
      return img.complete || r.bottom < 0 || r.top > innerHeight || r.width === 0;
    }),
  );
  if (size.phone && !name.startsWith("FAILED")) await assertFitsScreen(page, name);
  await page.screenshot({ path: file });
  return file;
}

// On a phone nothing may be wider than the screen: no sideways scrolling.
async function assertFitsScreen(page, what) {
  const m = await page.evaluate(() => {
    const widest = Array.from(document.querySelectorAll("body *"))
      .map((el) => ({ el, right: el.getBoundingClientRect().right }))
      .sort((a, b) => b.right - a.right)[0];
    return {
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      innerWidth,
      widest: widest ? `${widest.el.tagName.toLowerCase()}.${widest.el.className} (${Math.round(widest.right)}px)` : "",
    };
  });
  assert.equal(m.innerWidth, 390, "a phone's width");
  assert.ok(m.scrollWidth <= m.clientWidth, `${what}: the page is ${m.scrollWidth}px wide on a ${m.clientWidth}px screen; widest: ${m.widest}`);
}

// The main navigation: on a phone, behind the menu button.
async function openNav(page) {
  const menu = page.locator("#menu-button");
  if (!(await menu.isVisible())) return;
  if ((await menu.getAttribute("aria-expanded")) !== "true") await menu.click();
  await page.locator("#nav").waitFor({ state: "visible" });
}

async function signedIn(page, who) {
  await page.locator("#me", { hasText: who.name }).waitFor({ state: "attached" });
}

// Focus is on the page's main heading, as after every navigation.
async function focusOnHeading(page, text) {
  await page.waitForFunction((text) => {
    const a = document.activeElement;
    return a?.tagName === "H1" && a.closest("main") !== null && (!text || a.textContent.includes(text));
  }, text);
}

// A product photo, drawn in the browser and exported as JPEG bytes.
async function drawPhoto(page, { body, accent, label }) {
  const b64 = await page.evaluate(async ({ body, accent, label }) => {
    const c = new OffscreenCanvas(1200, 900);
    const g = c.getContext("2d");
    const bg = g.createLinearGradient(0, 0, 1200, 900);
    bg.addColorStop(0, "#f3efe6");
    bg.addColorStop(1, "#d9d2c3");
    g.fillStyle = bg;
    g.fillRect(0, 0, 1200, 900);
    g.fillStyle = "rgba(0,0,0,0.12)";
    g.beginPath();
    g.ellipse(600, 720, 420, 40, 0, 0, Math.PI * 2);
    g.fill();
    const rr = (x, y, w, h, r) => {
      g.beginPath();
      g.roundRect(x, y, w, h, r);
      g.fill();
    };
    g.fillStyle = body;
    rr(200, 300, 800, 380, 48);
    g.fillStyle = "#c9c9c9";
    rr(200, 300, 800, 110, [48, 48, 0, 0]);
    g.fillStyle = "#2b2b2b";
    rr(260, 330, 150, 60, 10);
    rr(790, 330, 150, 60, 10);
    g.fillStyle = accent;
    rr(500, 330, 200, 60, 12);
    g.fillStyle = "#1d1d1d";
    g.beginPath();
    g.arc(600, 545, 165, 0, Math.PI * 2);
    g.fill();
    const lens = g.createRadialGradient(570, 515, 10, 600, 545, 120);
    lens.addColorStop(0, "#6f8fb5");
    lens.addColorStop(0.5, "#23344d");
    lens.addColorStop(1, "#05080c");
    g.fillStyle = lens;
    g.beginPath();
    g.arc(600, 545, 120, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = "rgba(255,255,255,0.55)";
    g.beginPath();
    g.arc(560, 505, 22, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = "#eee";
    g.font = "bold 40px sans-serif";
    g.fillText(label, 250, 640);
    const blob = await c.convertToBlob({ type: "image/jpeg", quality: 0.9 });
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }, { body, accent, label });
  return Buffer.from(b64, "base64");
}

async function signUp(page, who) {
  await page.goto("/signup");
  await page.fill('input[name="display_name"]', who.name);
  await page.fill('input[name="email"]', who.email);
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
  await signedIn(page, who);
}

async function userId(page) {
  const href = await page.locator("#me").getAttribute("href");
  return href.split("/").pop();
}

async function sessionToken(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem("swapmeet.session")).token);
}

async function orderCard(page, status) {
  const card = page.locator(`.order-card[data-status="${status}"]`).first();
  await card.waitFor();
  return card;
}

// The steps of a test build on each other: after a failure, the rest are skipped.
function stepper(t, size) {
  let broken = false;
  return async (name, fn) => {
    if (broken) return t.test(name, { skip: "an earlier step failed" });
    return t.test(name, async () => {
      try {
        await fn();
      } catch (err) {
        broken = failed = true;
        await shot(current, size, `FAILED-${name.replace(/\W+/g, "-")}`).catch(() => {});
        throw err;
      }
    });
  };
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // Playwright gives each launch a fresh, empty --user-data-dir. The
    // network flags keep Chromium from calling home, which the test does not
    // need: without Internet access every refused connection is log noise.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
});

for (const size of sizes) {
  test(`${size.name}: two users trade an item from listing to review`, (t) => tradeFlow(t, size));
  test(`${size.name}: open pages show changes as they happen, without a reload`, (t) => liveFlow(t, size));
  test(`${size.name}: browse loads the next page as the user scrolls, in price order, and filters by the categories that exist`, () => browsePaging(size));
  test(`${size.name}: a seller runs the shop from the browser`, (t) => shopFlow(t, size));
}

async function tradeFlow(t, size) {
  const step = stepper(t, size);
  const people = peopleFor(size);
  const A = await newUser(size);
  const B = await newUser(size);
  let listingURL = "";
  let sellerId = "";

  await step("A's sign-up shows the server's field errors next to the fields, then succeeds", async () => {
    const { page } = A;
    current = page;
    await page.goto("/signup");
    await page.fill('input[name="display_name"]', people.a.name);
    await page.fill('input[name="email"]', "ada-at-example");
    await page.fill('input[name="password"]', "short");
    await page.click('button[type="submit"]');
    // google.rpc.BadRequest field violations, from the server, under each field.
    const emailError = page.locator('.field[data-field="email"] .field-error');
    const passwordError = page.locator('.field[data-field="password"] .field-error');
    await emailError.waitFor();
    await passwordError.waitFor();
    assert.match(await emailError.textContent(), /valid email address/i);
    assert.match(await passwordError.textContent(), /8 to 128 characters/i);
    assert.equal(await page.locator('.field[data-field="display_name"] .field-error').count(), 0);
    await shot(page, size, "signup-field-errors");

    await page.fill('input[name="email"]', people.a.email);
    await page.fill('input[name="password"]', password);
    await page.click('button[type="submit"]');
    await signedIn(page, people.a);
    sellerId = await userId(page);
  });

  await step("A lists an item with photos uploaded straight to the object store", async () => {
    const { page, context } = A;
    current = page;
    await openNav(page);
    await page.locator(".nav").getByRole("link", { name: "Sell an item" }).click();
    await page.locator("form.sell-form").waitFor();
    await focusOnHeading(page, "Sell an item");
    await page.fill('input[name="title"]', item.title);
    await page.fill('textarea[name="description"]', item.description);
    await page.fill('input[name="category"]', item.category);
    await page.selectOption('select[name="condition"]', item.condition);
    await page.fill('input[name="price"]', item.price);
    for (const [i, [k, v]] of item.attributes.entries()) {
      if (i > 0) await page.click("text=Add a detail");
      await page.locator(".attr-key").nth(i).fill(k);
      await page.locator(".attr-value").nth(i).fill(v);
    }
    const photos = [
      { name: "leica-m3-front.jpg", mimeType: "image/jpeg", buffer: await drawPhoto(page, { body: "#1f1f1f", accent: "#b8b8b8", label: "M3" }) },
      { name: "leica-m3-case.jpg", mimeType: "image/jpeg", buffer: await drawPhoto(page, { body: "#6b4226", accent: "#d4a373", label: "CASE" }) },
    ];
    await page.setInputFiles('input[type="file"]', photos);
    await page.locator(".photo-row").nth(1).waitFor();
    await shot(page, size, "sell-form");

    // Slow the upload link down so that the progress bar is seen moving.
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 96 * 1024 });
    const uploads = [];
    page.on("response", (r) => {
      if (r.request().method() === "POST" && !r.url().startsWith(baseURL)) uploads.push({ url: r.url(), status: r.status() });
    });
    await page.click("#publish");
    await page.waitForFunction(() => {
      const bar = document.querySelector('.photo-row[data-state="uploading"] progress');
      return bar && bar.value > 0.15 && bar.value < 0.85;
    });
    await page.locator('.photo-row[data-state="uploading"]').scrollIntoViewIfNeeded();
    await shot(page, size, "upload-progress");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

    // Published: the listing page, read with the write's consistency token,
    // already shows both confirmed photos.
    await page.waitForURL(/\/listings\/[0-9a-f-]{36}\?listed=1$/);
    await page.locator("#listing-title", { hasText: item.title }).waitFor();
    await page.locator(".banner-success").waitFor();
    await page.locator(".gallery-thumbs .thumb").nth(1).waitFor();
    await page.waitForFunction(() => {
      const img = document.querySelector(".gallery-main img");
      return img && img.complete && img.naturalWidth > 0;
    });
    listingURL = new URL(page.url()).pathname;
    assert.equal(uploads.length, 2, "two uploads, each a POST to the object store");
    for (const u of uploads) assert.ok(u.status >= 200 && u.status < 300, `upload to ${u.url}: HTTP ${u.status}`);
    await shot(page, size, "listing-published");
  });

  await step("B finds it by keyword search, buys it and pays", async () => {
    const { page } = B;
    current = page;
    await signUp(page, people.b);
    await page.goto("/");
    await page.fill('input[name="q"]', "leica rangefinder");
    await page.press('input[name="q"]', "Enter");
    const card = page.locator(`.listing-card[href="${listingURL}"]`);
    await card.waitFor();
    await page.waitForURL(/\?q=leica\+rangefinder/);
    await shot(page, size, "search-results");

    await card.click();
    await page.locator("#buy").waitFor();
    await page.locator(".seller-card", { hasText: people.a.name }).waitFor();
    await focusOnHeading(page, item.title);
    await shot(page, size, "listing-buyer-view");
    await page.click("#buy");
    await page.waitForURL(/\/orders\?placed=/);
    const pending = await orderCard(page, "PENDING");
    await pending.getByRole("button", { name: "Pay now" }).click();
    const paid = await orderCard(page, "PAID");
    assert.match(await paid.textContent(), /€450\.00/);
    await shot(page, size, "order-paid");
  });

  await step("A signs out, signs in again and ships it", async () => {
    const { page } = A;
    current = page;
    await openNav(page);
    await page.click("#sign-out");
    await page.locator('.nav a[href="/signin"]').waitFor({ state: "attached" });
    await page.goto("/signin?next=/sales");
    await page.fill('input[name="email"]', people.a.email);
    await page.fill('input[name="password"]', "not the password");
    await page.click('button[type="submit"]');
    await page.locator(".banner-error", { hasText: "invalid email or password" }).waitFor();
    await page.fill('input[name="password"]', password);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/sales$/);
    // SignIn's answer names the user: the navigation has the name at once.
    await signedIn(page, people.a);
    const paid = await orderCard(page, "PAID");
    assert.match(await paid.textContent(), new RegExp(people.b.name));
    await paid.getByRole("button", { name: "Mark as shipped" }).click();
    await orderCard(page, "SHIPPED");
    await shot(page, size, "sale-shipped");
  });

  await step("B confirms delivery and leaves a 5-star review", async () => {
    const { page } = B;
    current = page;
    await openNav(page);
    await page.click('.nav a[href="/orders"]');
    const shipped = await orderCard(page, "SHIPPED");
    await shipped.getByRole("button", { name: "Confirm delivery" }).click();
    const delivered = await orderCard(page, "DELIVERED");
    await shot(page, size, "order-delivered");

    await delivered.getByRole("link", { name: /Review the seller/ }).click();
    const form = page.locator("form.review-form");
    await form.waitFor();
    // Without a rating the server refuses, and says so under the stars.
    await form.locator('button[type="submit"]').click();
    await form.locator('.field[data-field="rating"] .field-error').waitFor();
    await form.locator('.star-pick[data-rating="5"]').click();
    await form.locator('textarea[name="comment"]').fill("Exactly as described, carefully packed and shipped the next day. A pleasure to buy from!");
    await form.locator('button[type="submit"]').click();
    await page.locator('#reviews .review[data-rating="5"]', { hasText: people.b.name }).waitFor();
    await page.locator('#seller-rating .rating[data-average="5.0"][data-count="1"]').waitFor();
    assert.equal(await page.locator("form.review-form").count(), 0, "the order is reviewed: no second form");
    await shot(page, size, "review-posted");
  });

  await step("A's seller page shows the rating", async () => {
    const { page } = A;
    current = page;
    await openNav(page);
    await page.click("#me");
    await page.waitForURL(new RegExp(`/users/${sellerId}$`));
    await page.locator('#seller-rating .rating[data-average="5.0"][data-count="1"]').waitFor();
    await page.locator('#reviews .review[data-rating="5"]').waitFor();
    const stats = await page.locator(".stats").textContent();
    assert.match(stats, /Sold\s*1/);
    await shot(page, size, "seller-rating");
  });

  await step("a second buyer sees the item as sold", async () => {
    const C = await newUser(size);
    const { page } = C;
    current = page;
    await signUp(page, people.c);
    await page.goto(listingURL);
    await page.locator('.sold-note[data-status="SOLD"]').waitFor();
    await page.locator('.listing-head .badge[data-status="SOLD"]').waitFor();
    assert.equal(await page.locator("#buy").count(), 0, "no Buy button on a sold item");
    await shot(page, size, "sold-to-second-buyer");

    // Search shows what is for sale: the sold item is gone from it.
    await page.goto("/?q=leica+rangefinder");
    await page.locator(".empty", { hasText: "No listings match" }).waitFor();
    await C.context.close();
  });

  await A.context.close();
  await B.context.close();
}

// Writes a JSON request to the API as a Connect client would, for seeding.
async function call(procedure, body, token) {
  const res = await fetch(`${baseURL}/swapmeet.v1.${procedure}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${procedure}: ${JSON.stringify(json)}`);
  return json;
}

// Returns once the read side has applied a listing write, so that readers
// without its token (everybody else) see it. Reading with the write's token
// waits up to the server's consistency wait, and answers Unavailable when the
// CDC is further behind than that (a burst of writes on a loaded machine).
async function applied(listingId, consistencyToken) {
  for (let tries = 1; ; tries++) {
    try {
      return await call("ListingService/GetListing", { listingId, consistencyToken });
    } catch (err) {
      if (tries >= 15 || !/"unavailable"/.test(err.message)) throw err;
    }
  }
}

// Seeds a photo as the app does: a presigned POST straight to MinIO, then
// ConfirmMediaUpload.
async function addPhoto(listingId, token, bytes) {
  const up = await call("ListingService/CreateMediaUpload", { listingId, contentType: "image/jpeg", sizeBytes: String(bytes.length) }, token);
  const form = new FormData();
  for (const [k, v] of Object.entries(up.formFields ?? {})) form.append(k, v);
  form.append("file", new Blob([bytes], { type: "image/jpeg" }), "photo.jpg");
  const res = await fetch(up.uploadUrl, { method: "POST", body: form });
  if (!res.ok) throw new Error(`upload: HTTP ${res.status}: ${await res.text()}`);
  const confirmed = await call("ListingService/ConfirmMediaUpload", { listingId, mediaId: up.mediaId }, token);
  return { mediaId: up.mediaId, consistencyToken: confirmed.consistencyToken };
}

// Marks the page's document, so that a later check can tell it was not reloaded.
async function markDocument(page) {
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
}

async function assertNotReloaded(page, what) {
  assert.equal(await page.evaluate(() => window.__sameDocument === true), true, `${what} was not reloaded`);
}

async function liveFlow(t, size) {
  const step = stepper(t, size);
  const people = peopleFor(size);
  const seller = await newUser(size);
  const buyer = await newUser(size);
  const visitor = await newUser(size); // never signs in
  const title = "Braun SK 4 radio-phonograph";
  let listing;
  let listingURL = "";
  let orderId = "";

  await step("the seller lists an item and keeps the sales page open", async () => {
    const { page } = seller;
    current = page;
    await signUp(page, people.d);
    const token = await sessionToken(page);
    listing = await call("ListingService/CreateListing", {
      title,
      description: "The 'Snow White's Coffin': white lacquered steel, elm side panels, acrylic lid. Radio and turntable both work.",
      category: "music",
      condition: "CONDITION_GOOD",
      price: { currencyCode: "EUR", amountMinor: "120000" },
    }, token);
    listingURL = `/listings/${listing.listingId}`;
    await applied(listing.listingId, listing.consistencyToken);

    await openNav(page);
    await page.locator('.nav a[href="/sales"]').click();
    await page.locator(".empty", { hasText: "No sales yet" }).waitFor();
    await page.locator('.page-orders .live[data-state="live"]').waitFor();
    await markDocument(page);
  });

  await step("the seller edits the price and title; the buyer's and a visitor's open listing pages show them", async () => {
    current = buyer.page;
    await signUp(buyer.page, people.e);
    for (const { page } of [buyer, visitor]) {
      current = page;
      await page.goto(listingURL);
      await page.locator("#listing-title", { hasText: title }).waitFor();
      await page.locator(".listing-price", { hasText: "€1,200.00" }).waitFor();
      await page.locator('.listing-facts .live[data-state="live"]').waitFor();
      await markDocument(page);
      // No reading the listing again from here on: what changes must come
      // over the stream (WatchListing).
      await page.route(/\/GetListing\?/, (route) => route.abort());
    }
    await shot(visitor.page, size, "live-listing-before");

    // In another tab of the seller's, so that the sales page stays open.
    const tab = await newTab(seller.context);
    current = tab;
    await tab.goto(listingURL);
    await tab.locator("#edit-listing").click();
    await tab.waitForURL(new RegExp(`${listingURL}/edit$`));
    await focusOnHeading(tab, "Edit listing");
    await tab.locator('input[name="price"]').fill("950");
    await tab.locator('input[name="title"]').fill(`${title}, 1956`);
    await tab.click("#save");
    await tab.waitForURL(new RegExp(`${listingURL}\\?saved=1$`));
    await tab.locator("#saved").waitFor();
    await tab.locator(".listing-price", { hasText: "€950.00" }).waitFor();
    await tab.close();

    for (const [who, { page }] of [["the buyer", buyer], ["the visitor", visitor]]) {
      current = page;
      await page.locator(".listing-price", { hasText: "€950.00" }).waitFor();
      await page.locator("#listing-title", { hasText: `${title}, 1956` }).waitFor();
      await assertNotReloaded(page, `${who}'s listing page`);
      await page.unroute(/\/GetListing\?/);
    }

    // The History section, read again as of the stream's token: the edit,
    // newest first (its price, then its title), over the listing's creation.
    const page = visitor.page;
    const history = page.locator("#history");
    await history.locator('li[data-field="price"]', { hasText: "€1,200.00 → €950.00" }).waitFor();
    await history.locator('li[data-field="title"]', { hasText: `${title}, 1956` }).waitFor();
    const rows = await history.locator("li").allTextContents();
    assert.match(rows[0], /\d{4}, \d\d:\d\d — price €1,200\.00 → €950\.00$/, `the newest change first: ${JSON.stringify(rows)}`);
    assert.match(rows[1], new RegExp(`— title “${title}” → “${title}, 1956”$`), `then the title: ${JSON.stringify(rows)}`);
    assert.match(rows.at(-1), /— listed at €1,200\.00$/, `the creation last: ${JSON.stringify(rows)}`);
    await history.scrollIntoViewIfNeeded();
    await shot(page, size, "live-listing-history");
  });

  await step("the buyer buys it at the new price: the visitor sees it sold, the seller sees the order", async () => {
    const { page } = buyer;
    current = page;
    await page.click("#buy");
    await page.waitForURL(/\/orders\?placed=/);
    orderId = new URL(page.url()).searchParams.get("placed");
    const pending = await orderCard(page, "PENDING");
    assert.match(await pending.textContent(), /€950\.00/);

    current = visitor.page;
    await visitor.page.locator('.listing-head .badge[data-status="SOLD"]', { hasText: /sold/i }).waitFor();
    await visitor.page.locator('.sold-note[data-status="SOLD"]').waitFor();
    assert.equal(await visitor.page.getByRole("link", { name: "Sign in to buy" }).count(), 0, "nothing to buy on a sold item");
    await visitor.page.locator('#history li[data-field="status"]', { hasText: "Available → Sold" }).waitFor();
    await assertNotReloaded(visitor.page, "the visitor's listing page");
    await shot(visitor.page, size, "live-listing-sold");

    current = seller.page;
    await seller.page.locator(`.order-card[data-order-id="${orderId}"][data-status="PENDING"]`).waitFor();
    assert.equal(await seller.page.locator(".empty", { hasText: "No sales yet" }).isVisible(), false, "the empty state is gone");
    await assertNotReloaded(seller.page, "the seller's sales page");
    await shot(seller.page, size, "live-sale-appears");
  });

  await step("the buyer pays and the seller ships: the buyer's open orders page shows it shipped", async () => {
    const { page } = buyer;
    current = page;
    await markDocument(page);
    const pending = await orderCard(page, "PENDING");
    await pending.getByRole("button", { name: "Pay now" }).click();
    await orderCard(page, "PAID");

    // The seller's page learns of the payment by itself, and offers to ship.
    current = seller.page;
    const paid = seller.page.locator(`.order-card[data-order-id="${orderId}"][data-status="PAID"]`);
    await paid.waitFor();
    await assertNotReloaded(seller.page, "the seller's sales page");
    await paid.getByRole("button", { name: "Mark as shipped" }).click();
    await seller.page.locator(`.order-card[data-order-id="${orderId}"][data-status="SHIPPED"]`).waitFor();

    current = page;
    const shipped = page.locator(`.order-card[data-order-id="${orderId}"][data-status="SHIPPED"]`);
    await shipped.waitFor();
    await shipped.getByRole("button", { name: "Confirm delivery" }).waitFor();
    await assertNotReloaded(page, "the buyer's orders page");
    assert.equal(await page.locator(".order-card").count(), 1, "the order is shown once");
    await shot(page, size, "live-order-shipped");
  });

  await step("the order's page tells who placed, paid, shipped and received it, from its history", async () => {
    // The seller opens it from the sales page: read as of the shipping's
    // token, its timeline has every step so far, each with who took it.
    const { page } = seller;
    current = page;
    await page.locator(`.order-card[data-order-id="${orderId}"]`).getByRole("link", { name: "Order details" }).click();
    await page.waitForURL(new RegExp(`/orders/${orderId}$`));
    const timeline = page.locator("#order-timeline");
    await timeline.locator('li[data-step="shipped"]', { hasText: "by the seller (you)" }).waitFor();
    assert.deepEqual(await timeline.locator("li").evaluateAll((lis) => lis.map((li) => li.dataset.step)), ["placed", "paid", "shipped"]);
    assert.match(await timeline.locator('li[data-step="placed"]').textContent(), new RegExp(`Placed by the buyer, ${people.e.name}`));
    assert.match(await timeline.locator('li[data-step="paid"]').textContent(), new RegExp(`Paid by the buyer, ${people.e.name}`));
    await page.locator('.page-order .live[data-state="live"]').waitFor();
    await markDocument(page);

    // The buyer confirms delivery on the order's own page; the seller's
    // open one adds the step by itself.
    current = buyer.page;
    await buyer.page.locator(`.order-card[data-order-id="${orderId}"]`).getByRole("link", { name: "Order details" }).click();
    await buyer.page.waitForURL(new RegExp(`/orders/${orderId}$`));
    await buyer.page.getByRole("button", { name: "Confirm delivery" }).click();
    const received = buyer.page.locator('#order-timeline li[data-step="delivered"]', { hasText: "by the buyer (you)" });
    await received.waitFor();
    assert.match(await buyer.page.locator('#order-timeline li[data-step="shipped"]').textContent(), new RegExp(`Shipped by the seller, ${people.d.name}`));
    await shot(buyer.page, size, "order-timeline");

    current = page;
    await page.locator('#order-timeline li[data-step="delivered"]', { hasText: `by the buyer, ${people.e.name}` }).waitFor();
    await page.locator('.page-order .badge[data-status="DELIVERED"]').waitFor();
    await assertNotReloaded(page, "the seller's order page");
  });

  await seller.context.close();
  await buyer.context.close();
  await visitor.context.close();
}

async function browsePaging(size) {
  // 15 posters by one seller, seeded through the API; page size is 12.
  const word = `poster${run}${size.name}`;
  const seller = await call("UserService/SignUp", { email: `dora.${run}.${size.name}@example.com`, password, displayName: "Dora Maar" });
  let last;
  for (let i = 1; i <= 15; i++) {
    last = await call("ListingService/CreateListing", {
      title: `Vintage travel poster no. ${i} ${word}`,
      description: "Lithograph, framed.",
      category: "art",
      condition: "CONDITION_GOOD",
      price: { currencyCode: "EUR", amountMinor: String(1000 + ((i * 7) % 15) * 100) },
    }, seller.sessionToken);
  }
  // The browsing user reads without a token (eventual consistency): once
  // the read side has applied the last write, it has applied every earlier one.
  await applied(last.listingId, last.consistencyToken);
  const { page, context } = await newUser(size);
  current = page;

  const searches = [];
  page.on("response", async (r) => {
    if (r.url().includes("/SearchListings")) searches.push(`${r.status()} ${decodeURIComponent(r.url()).slice(-120)} -> ${(await r.text().catch(() => "")).length} bytes, ${((await r.text().catch(() => "")).match(/"listingId"/g) ?? []).length} listings`);
  });
  const explain = (err) => async () => {
    const state = await page.evaluate(() => ({ y: scrollY, h: document.documentElement.scrollHeight, sentinel: document.querySelector(".sentinel")?.getBoundingClientRect().top, cards: document.querySelectorAll("#results .listing-card").length, status: document.querySelector(".results-status")?.textContent, more: document.querySelector(".more button")?.hidden }));
    await shot(page, size, "FAILED-paging");
    throw new Error(`${err.message}\nstate: ${JSON.stringify(state)}\nsearches:\n${searches.join("\n")}`);
  };
  await page.goto(`/?q=${word}&sort=price-asc`);
  const cards = page.locator("#results .listing-card");
  await cards.nth(11).waitFor().catch((err) => explain(err)());
  assert.equal(await cards.count(), 12, "the first page");
  await page.locator(".footer").scrollIntoViewIfNeeded();
  await cards.nth(14).waitFor().catch((err) => explain(err)());
  assert.equal(await cards.count(), 15, "the second page, loaded on scroll");
  const prices = await page.locator("#results .card-price").allTextContents();
  const values = prices.map((p) => Number(p.replace(/[^0-9.]/g, "")));
  assert.deepEqual(values, [...values].sort((a, b) => a - b), "cheapest first across pages");
  await shot(page, size, "browse-infinite-paging");
  // The category filter lists the categories that have listings, with
  // their counts, from the service: "art", which the seller typed, too.
  const art = page.locator('select[name="category"] option[value="art"]');
  await art.waitFor({ state: "attached" });
  assert.match(await art.textContent(), /^art \(\d+\)$/, "the category a seller typed, with its count");
  await context.close();
}

// The request message of a Connect GET (the app's queries), from its URL.
function getMessage(url) {
  const q = new URL(url).searchParams;
  const m = q.get("message") ?? "";
  if (q.get("encoding") === "json") return JSON.parse(q.get("base64") === "1" ? Buffer.from(m, "base64url").toString() : m);
  throw new Error(`not a JSON Connect GET: ${url}`);
}

// "20s", "1m30s" → milliseconds; "" → 0.
function parseDuration(s) {
  let ms = 0;
  for (const [, n, unit] of s.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) ms += Number(n) * { ms: 1, s: 1e3, m: 60e3, h: 3600e3 }[unit];
  return ms;
}

// When a presigned URL stops working: X-Amz-Date plus X-Amz-Expires.
function urlExpiry(url) {
  const q = new URL(url).searchParams;
  const d = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(q.get("X-Amz-Date") ?? "");
  assert.ok(d && q.get("X-Amz-Expires"), `a presigned URL: ${url}`);
  return Date.UTC(+d[1], +d[2] - 1, +d[3], +d[4], +d[5], +d[6]) + Number(q.get("X-Amz-Expires")) * 1000;
}

async function galleryOrder(page) {
  return page.locator(".gallery-thumbs .thumb").evaluateAll((bs) => bs.map((b) => b.dataset.mediaId));
}

async function photoOrder(page) {
  return page.locator("#photo-order .photo-item").evaluateAll((lis) => lis.map((li) => li.dataset.mediaId));
}

async function shopFlow(t, size) {
  const step = stepper(t, size);
  const people = peopleFor(size);
  const S = await newUser(size); // the seller
  const V = await newUser(size); // a visitor who keeps a listing page open
  const Q = await newUser(size); // a buyer who is too late
  let token = "";
  let sellerId = "";
  const kept = { id: "", src: "", thumbs: [], expiry: 0 }; // the listing V keeps open
  let photos = { id: "", media: [] }; // the listing whose photos the seller arranges
  const plain = []; // listings without photos, oldest first
  const since = requests.length; // this test's requests start here

  await step("the seller signs up: the skip link comes first, and focus follows navigation to the heading", async () => {
    const { page } = S;
    current = page;
    await signUp(page, people.s);
    sellerId = await userId(page);
    token = await sessionToken(page);

    // Seeding, through the API: the seller's listing with three photos to
    // arrange, and 13 more: 14 in all, more than a page of "My listings"
    // (12). And another seller's listing with two photos, which a visitor
    // keeps open (nothing the seller does here changes it).
    const draw = (label, body) => drawPhoto(page, { body, accent: "#e0c068", label });
    const create = (title, i, as = token) =>
      call("ListingService/CreateListing", {
        title,
        description: "Seeded by the browser test.",
        category: "kitchen",
        condition: "CONDITION_GOOD",
        price: { currencyCode: "EUR", amountMinor: String(2000 + i * 100) },
      }, as);
    const julia = await call("UserService/SignUp", { email: `julia.${run}.${size.name}@example.com`, password, displayName: "Julia Child" });
    const k = await create("Enamel coffee pot, two photos", 0, julia.sessionToken);
    kept.id = k.listingId;
    let last = k.consistencyToken;
    for (const [label, body] of [["POT", "#355070"], ["LID", "#6d597a"]]) last = (await addPhoto(kept.id, julia.sessionToken, await draw(label, body))).consistencyToken;
    await applied(kept.id, last);
    const p = await create("Copper saucepan set, three photos", 1);
    photos.id = p.listingId;
    for (const [label, body] of [["ONE", "#b56576"], ["TWO", "#2a9d8f"], ["THREE", "#e76f51"]]) {
      const up = await addPhoto(photos.id, token, await draw(label, body));
      photos.media.push(up.mediaId);
      last = up.consistencyToken;
    }
    for (let i = 1; i <= 13; i++) {
      const l = await create(`Kitchen odds and ends, lot ${i}`, i + 1);
      plain.push(l.listingId);
      last = l.consistencyToken;
    }
    await applied(plain.at(-1), last);

    // A fresh load: the first Tab reaches the skip link, which goes to the heading.
    await page.goto("/");
    await page.keyboard.press("Tab");
    const skip = await page.evaluate(() => ({ cls: document.activeElement?.className, text: document.activeElement?.textContent }));
    assert.deepEqual(skip, { cls: "skip-link", text: "Skip to content" }, "the first focusable element is the skip link");
    await page.keyboard.press("Enter");
    await focusOnHeading(page);
    assert.equal(new URL(page.url()).pathname, "/", "the skip link does not navigate");

    if (size.phone) {
      // The navigation is folded away behind the menu button.
      const menu = page.locator("#menu-button");
      assert.equal(await menu.isVisible(), true, "a menu button on a phone");
      assert.equal(await menu.getAttribute("aria-expanded"), "false");
      assert.equal(await page.locator('#nav a[href="/me/listings"]').isVisible(), false, "the links are hidden until the menu is opened");
      await menu.focus();
      await page.keyboard.press("Enter"); // keyboard-operable
      assert.equal(await menu.getAttribute("aria-expanded"), "true");
      await page.locator('#nav a[href="/me/listings"]').waitFor();
      await shot(page, size, "menu-open");
      await page.keyboard.press("Escape");
      assert.equal(await menu.getAttribute("aria-expanded"), "false");
      assert.equal(await page.locator('#nav a[href="/me/listings"]').isVisible(), false, "Escape folds the menu again");
      assert.equal(await page.evaluate(() => document.activeElement?.id), "menu-button", "focus goes back to the menu button");
    } else {
      assert.equal(await page.locator("#menu-button").isVisible(), false, "no menu button on a wide screen");
      await page.locator('#nav a[href="/me/listings"]').waitFor();
    }
    await openNav(page);
    await page.locator('#nav a[href="/me/listings"]').click();
    await focusOnHeading(page, "My listings");
    if (size.phone) assert.equal(await page.locator("#menu-button").getAttribute("aria-expanded"), "false", "the menu folds on navigation");
  });

  await step("a visitor opens a listing with photos, and keeps it open", async () => {
    const { page } = V;
    current = page;
    await page.goto(`/listings/${kept.id}`);
    await page.locator(".gallery-thumbs .thumb").nth(1).waitFor();
    await page.waitForFunction(() => Array.from(document.querySelectorAll(".gallery img")).every((img) => img.complete && img.naturalWidth > 0));
    kept.src = await page.locator(".gallery-main img").getAttribute("src");
    kept.thumbs = await page.locator(".gallery-thumbs img").evaluateAll((imgs) => imgs.map((i) => i.src));
    kept.expiry = urlExpiry(kept.src);
    if (urlLifetime) assert.ok(kept.expiry - Date.now() <= urlLifetime + 5_000, `the stack's short URL lifetime (${urlLifetime} ms) is in effect: ${kept.src}`);
    await markDocument(page);
    // The very element: its URL must be swapped in place, not redrawn.
    await page.evaluate(() => {
      window.__mainPhoto = document.querySelector(".gallery-main img");
    });
  });

  await step("My listings pages through all of the seller's listings, newest first", async () => {
    const { page } = S;
    current = page;
    const cards = page.locator("#my-listings .listing-card");
    await cards.nth(11).waitFor();
    assert.deepEqual(
      await cards.evaluateAll((cs) => cs.slice(0, 3).map((c) => c.dataset.listingId)),
      plain.slice(-3).reverse(),
      "newest first",
    );
    await shot(page, size, "my-listings");
    // The second page loads as the end of the first comes into view (at
    // once, should the first not fill the screen).
    await page.locator(".footer").scrollIntoViewIfNeeded();
    await cards.nth(13).waitFor();
    const ids = await cards.evaluateAll((cs) => cs.map((c) => c.dataset.listingId));
    assert.deepEqual(ids, [...plain].reverse().concat(photos.id), "all 14, newest first, each once");
    assert.equal(await page.locator("#more-listings").isVisible(), false, "no third page");
    // Two reads of 12: the first page, then the next with its page_token.
    const reads = requests.slice(since).filter((r) => new URL(r.url).pathname.endsWith("/ListMyListings")).map((r) => getMessage(r.url));
    assert.ok(reads.some((m) => !m.pageToken) && reads.some((m) => m.pageToken), `a first page, and a next page by its token: ${JSON.stringify(reads)}`);
    assert.ok(reads.every((m) => m.pageSize === 12), "pages of 12");
  });

  await step("the seller withdraws a listing after a confirmation; My listings shows it withdrawn", async () => {
    const { page } = S;
    current = page;
    const id = plain.at(-1);
    await page.locator(`#my-listings .listing-card[data-listing-id="${id}"]`).click();
    await page.waitForURL(new RegExp(`/listings/${id}$`));
    await page.locator("#withdraw").click();
    const confirm = page.locator(".buy-box .confirm");
    await confirm.waitFor();
    assert.match(await confirm.textContent(), /Take “Kitchen odds and ends, lot 13” off sale\?/);
    await shot(page, size, "withdraw-confirm");
    await confirm.getByRole("button", { name: "Withdraw listing" }).click();
    await page.waitForURL(new RegExp(`/me/listings\\?withdrawn=${id}$`));
    await page.locator("#withdrawn-note").waitFor();
    // Read with the withdrawal's token: the card says so at once.
    const card = page.locator(`#my-listings .listing-card[data-listing-id="${id}"][data-status="WITHDRAWN"]`);
    await card.waitFor();
    assert.match(await card.locator(".badge").textContent(), /withdrawn/i);
    await shot(page, size, "my-listings-withdrawn");
    await page.selectOption('select[name="status"]', "WITHDRAWN");
    await page.waitForURL(/\/me\/listings\?status=WITHDRAWN$/);
    await page.waitForFunction(() => {
      const cards = document.querySelectorAll("#my-listings .listing-card");
      return cards.length === 1 && !document.querySelector(".results-status .loading");
    });
    assert.equal(await page.locator("#my-listings .listing-card").getAttribute("data-listing-id"), id, "only the withdrawn one");
  });

  await step("the seller moves photos (with the keyboard too) and removes one; the listing shows the new order", async () => {
    const { page } = S;
    current = page;
    const [one, two, three] = photos.media;
    await page.goto(`/listings/${photos.id}`);
    await page.locator("#edit-listing").click();
    await page.waitForURL(new RegExp(`/listings/${photos.id}/edit$`));
    await focusOnHeading(page, "Edit listing");
    await page.locator("#photo-order .photo-item").nth(2).waitFor();
    assert.deepEqual(await photoOrder(page), [one, two, three]);

    // Keyboard: focus "Move photo 3 up", press Enter; focus follows the photo.
    await page.getByRole("button", { name: "Move photo 3 up" }).focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction((want) => JSON.stringify(Array.from(document.querySelectorAll("#photo-order .photo-item"), (li) => li.dataset.mediaId)) === want, JSON.stringify([one, three, two]));
    await page.waitForFunction((id) => document.activeElement?.closest(".photo-item")?.dataset.mediaId === id, three);
    await page.keyboard.press("Enter"); // "Move photo 2 up", where focus now is: to the front
    await page.waitForFunction((want) => JSON.stringify(Array.from(document.querySelectorAll("#photo-order .photo-item"), (li) => li.dataset.mediaId)) === want, JSON.stringify([three, one, two]));
    await page.locator("#photos").scrollIntoViewIfNeeded();
    await shot(page, size, "edit-photos-reordered");

    await page.getByRole("button", { name: "Remove photo 3" }).click();
    await page.locator("#photo-order .confirm").getByRole("button", { name: "Remove photo" }).click();
    await page.waitForFunction((want) => JSON.stringify(Array.from(document.querySelectorAll("#photo-order .photo-item"), (li) => li.dataset.mediaId)) === want, JSON.stringify([three, one]));

    await page.locator(".page-edit .lead a").click();
    await page.waitForURL(new RegExp(`/listings/${photos.id}$`));
    await page.locator(".gallery-thumbs .thumb").nth(1).waitFor();
    assert.deepEqual(await galleryOrder(page), [three, one], "the gallery in the new order, without the removed photo");
    assert.equal(await page.locator(".gallery-main img").getAttribute("data-media-id"), three, "the new cover shown large");
    await shot(page, size, "listing-photos-reordered");
  });

  await step("the seller edits the profile; the seller page shows the new name and bio", async () => {
    const { page } = S;
    current = page;
    await openNav(page);
    await page.click("#me");
    await page.waitForURL(new RegExp(`/users/${sellerId}$`));
    await page.locator("#edit-profile").click();
    await page.waitForURL(/\/me\/profile$/);
    await focusOnHeading(page, "Edit your profile");
    const name = "Margaret H. Hamilton";
    const bio = "Kitchenware collector. I ship within two days, carefully packed.";
    await page.fill('input[name="display_name"]', name);
    await page.fill('textarea[name="bio"]', bio);
    await shot(page, size, "profile-edit");
    await page.click("#save-profile");
    await page.waitForURL(new RegExp(`/users/${sellerId}\\?updated=1$`));
    await page.locator("#seller-name", { hasText: name }).waitFor();
    await page.locator(".profile .bio", { hasText: bio }).waitFor();
    await signedIn(page, { name });
    await shot(page, size, "profile-updated");
    people.s.name = name;
  });

  await step("two tabs edit the same version: the second is shown the first's change and saves its own on top", async () => {
    const A = S.page;
    const B = await newTab(S.context);
    const url = `/listings/${photos.id}/edit`;
    for (const page of [A, B]) {
      current = page;
      await page.goto(url);
      await page.locator("form.edit-form[data-version]").waitFor();
    }
    const version = Number(await A.locator("form.edit-form").getAttribute("data-version"));
    assert.equal(Number(await B.locator("form.edit-form").getAttribute("data-version")), version, "both at the same version");

    current = A;
    await A.fill('input[name="price"]', "31");
    await A.click("#save");
    await A.waitForURL(new RegExp(`/listings/${photos.id}\\?saved=1$`));
    await A.locator(".listing-price", { hasText: "€31.00" }).waitFor();

    current = B;
    await B.fill('input[name="price"]', "29.50");
    await B.fill('input[name="title"]', "Copper saucepan set of three");
    await B.click("#save");
    const conflict = B.locator("#conflict");
    await conflict.waitFor();
    assert.match(await conflict.textContent(), new RegExp(says.VERSION_CONFLICT.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), "the message for VERSION_CONFLICT");
    assert.match(await conflict.locator('li[data-field="price"]').textContent(), /Price: €21\.00 → €31\.00 \(your change is kept below\)/, "the first tab's price");
    assert.equal(Number(await B.locator("form.edit-form").getAttribute("data-version")), version + 1, "the form now stands on the newer version");
    assert.equal(await B.locator('input[name="price"]').inputValue(), "29.50", "the second tab's edit is kept");
    assert.equal(B.url().endsWith(url), true, "still editing");
    await shot(B, size, "edit-conflict");

    await B.click("#save");
    await B.waitForURL(new RegExp(`/listings/${photos.id}\\?saved=1$`));
    await B.locator(".listing-price", { hasText: "€29.50" }).waitFor();
    await B.locator("#listing-title", { hasText: "Copper saucepan set of three" }).waitFor();
    await shot(B, size, "edit-redone");
    await B.close();
  });

  await step("a buyer who clicks Buy on an item sold meanwhile is told so", async () => {
    const { page } = Q;
    current = page;
    await signUp(page, people.q);
    const id = plain[0];
    // The page must not learn of the sale by itself before the click.
    await page.route(/\/WatchListing$/, (route) => route.abort());
    await page.goto(`/listings/${id}`);
    await page.locator("#buy").waitFor();
    const other = await call("UserService/SignUp", { email: `ruth.${run}.${size.name}@example.com`, password, displayName: "Ruth Handler" });
    await call("OrderService/PlaceOrder", { listingIds: [id], idempotencyKey: `too-late-${run}-${size.name}` }, other.sessionToken);
    await page.click("#buy");
    const told = page.locator(".buy-box .banner-error");
    await told.waitFor();
    assert.equal((await told.textContent()).trim(), says.LISTING_SOLD, "the message for LISTING_SOLD");
    await page.locator('.sold-note[data-status="SOLD"]').waitFor();
    assert.equal(await page.locator("#buy").count(), 0, "and it shows the item sold");
    await shot(page, size, "buy-refused-sold");
    await page.unroute(/\/WatchListing$/);
  });

  await step("the visitor's page, open past its image URLs' lifetime, still shows the photos", async () => {
    const { page } = V;
    current = page;
    // The condition is the wall clock: past the expiry of the URLs the page
    // was first drawn with (seconds, on the stack; the rest of the flow
    // usually takes longer than that).
    const deadline = Date.now() + Math.max(0, kept.expiry - Date.now()) + 60_000;
    await page.waitForFunction((t) => Date.now() > t, kept.expiry + 1_000, { timeout: deadline - Date.now(), polling: 250 });
    // The old URL is dead: MinIO refuses it.
    const old = await fetch(kept.src);
    assert.equal(old.status, 403, `MinIO refuses the expired URL (HTTP ${old.status})`);
    assert.match(await old.text(), /expired/i);
    // The same elements, with new URLs that load.
    await page.waitForFunction((oldSrc) => {
      const img = document.querySelector(".gallery-main img");
      return img === window.__mainPhoto && img.src !== oldSrc && img.complete && img.naturalWidth > 0;
    }, kept.src);
    await page.waitForFunction((old) => {
      const imgs = Array.from(document.querySelectorAll(".gallery-thumbs img"));
      return imgs.length === old.length && imgs.every((img, i) => img.src !== old[i] && img.complete && img.naturalWidth > 0);
    }, kept.thumbs);
    await assertNotReloaded(page, "the visitor's listing page");
    // A photo shown large only now gets a fresh URL too.
    await page.locator(".gallery-thumbs .thumb").nth(1).click();
    await page.waitForFunction(() => {
      const img = document.querySelector(".gallery-main img");
      return img !== window.__mainPhoto && img.complete && img.naturalWidth > 0;
    });
    assert.ok(urlExpiry(await page.locator(".gallery-main img").getAttribute("src")) > Date.now(), "a URL that has not expired");
    await shot(page, size, "listing-open-past-url-expiry");
  });

  await S.context.close();
  await V.context.close();
  await Q.context.close();
}

test("queries go over HTTP GET, writes over POST, and the page had no errors", (t) => {
  if (failed) return t.skip("the flow failed");
  const rpc = (name) => requests.filter((r) => new URL(r.url).pathname.endsWith(name));
  for (const q of ["/SearchListings", "/GetListing", "/ListOrders", "/GetUser", "/ListSellerReviews", "/GetOrder", "/ListHistory", "/ListMyListings", "/ListCategories"]) {
    const calls = rpc(q);
    assert.ok(calls.length > 0, `${q} was called`);
    assert.deepEqual([...new Set(calls.map((c) => c.method))], ["GET"], `${q} uses GET`);
  }
  for (const w of ["/SignUp", "/SignIn", "/SignOut", "/CreateListing", "/CreateMediaUpload", "/ConfirmMediaUpload", "/PlaceOrder", "/MarkOrderPaid", "/MarkOrderShipped", "/ConfirmDelivery", "/CreateReview", "/UpdateListing", "/WithdrawListing", "/ReorderMedia", "/DeleteMedia", "/UpdateProfile"]) {
    const calls = rpc(w);
    assert.ok(calls.length > 0, `${w} was called`);
    assert.deepEqual([...new Set(calls.map((c) => c.method))], ["POST"], `${w} uses POST`);
  }
  // Streams are POSTs in the Connect protocol, whatever their idempotency.
  for (const s of ["/WatchListing", "/WatchOrders"]) {
    const calls = rpc(s);
    assert.ok(calls.length > 0, `${s} was called`);
    assert.deepEqual([...new Set(calls.map((c) => c.method))], ["POST"], `${s} is a POST stream`);
  }
  assert.deepEqual(pageErrors.map(String), []);
  console.log(`screenshots: ${shots} (${[...counters].map(([k, v]) => `${v} ${k}`).join(", ")})`);
});
