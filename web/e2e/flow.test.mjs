// The whole product through the browser: Debian's Chromium, driven by
// playwright-core, against a private `swapmeet serve` + `swapmeet cdc`
// (started by ./stack, which sets E2E_BASE_URL). Run by `make test`, or
// `make e2e`.
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
// reload: the visitor's listing page shows a new price, with the change
// (old → new) in its History, and then "Sold", the seller's sales page shows
// the new order and then its payment, the buyer's orders page shows it
// shipped; the order's page has a timeline, from its history, of who placed,
// paid, shipped and received it, and the seller's open one adds the
// delivery the buyer confirms there. Then: browsing loads the next page as
// the user scrolls; queries went as GET and writes as POST; no page threw.
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

const run = Date.now().toString(36);
const password = "correct horse battery";
const people = {
  a: { name: "Ada Lovelace", email: `ada.${run}@example.com` },
  b: { name: "Grace Hopper", email: `grace.${run}@example.com` },
  c: { name: "Alan Turing", email: `alan.${run}@example.com` },
  d: { name: "Hedy Lamarr", email: `hedy.${run}@example.com` },
  e: { name: "Claude Shannon", email: `claude.${run}@example.com` },
};
const item = {
  title: "Leica M3 rangefinder camera",
  description: "Classic 35 mm rangefinder from 1958, double-stroke. Shutter speeds are accurate, the viewfinder is bright and clean. Comes with the original leather case and strap.",
  category: "cameras",
  condition: "LIKE_NEW",
  price: "450",
  attributes: [["brand", "Leica"], ["lens_mount", "M-mount"]],
};

let browser;
const pageErrors = [];
const requests = [];

let current; // the page last acted on, for a screenshot on failure
let failed = false;

async function newUser() {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1, locale: "en-GB" });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (err) => pageErrors.push(err));
  page.on("request", (r) => requests.push({ method: r.method(), url: r.url() }));
  return { context, page };
}

let n = 0;
async function shot(page, name) {
  n++;
  const file = join(shots, `${String(n).padStart(2, "0")}-${name}.png`);
  // Let images that are already in the page finish, so the shot is not half-drawn.
  await page.waitForFunction(() => Array.from(document.images).every((img) => img.complete));
  await page.screenshot({ path: file });
  return file;
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
  await page.locator("#me", { hasText: who.name }).waitFor();
}

async function userId(page) {
  const href = await page.locator("#me").getAttribute("href");
  return href.split("/").pop();
}

async function orderCard(page, status) {
  const card = page.locator(`.order-card[data-status="${status}"]`).first();
  await card.waitFor();
  return card;
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

test("two users trade an item from listing to review", async (t) => {
  // The steps build on each other: after a failure, the rest are skipped.
  const step = async (name, fn) => {
    if (failed) return t.test(name, { skip: "an earlier step failed" });
    return t.test(name, async () => {
      try {
        await fn();
      } catch (err) {
        failed = true;
        await shot(current, `FAILED-${name.replace(/\W+/g, "-")}`).catch(() => {});
        throw err;
      }
    });
  };
  const A = await newUser();
  const B = await newUser();
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
    await shot(page, "signup-field-errors");

    await page.fill('input[name="email"]', people.a.email);
    await page.fill('input[name="password"]', password);
    await page.click('button[type="submit"]');
    await page.locator("#me", { hasText: people.a.name }).waitFor();
    sellerId = await userId(page);
  });

  await step("A lists an item with photos uploaded straight to the object store", async () => {
    const { page, context } = A;
    current = page;
    await page.locator(".nav").getByRole("link", { name: "Sell an item" }).click();
    await page.locator("form.sell-form").waitFor();
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
    await shot(page, "sell-form");

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
    await shot(page, "upload-progress");
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
    await shot(page, "listing-published");
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
    await shot(page, "search-results");

    await card.click();
    await page.locator("#buy").waitFor();
    await page.locator(".seller-card", { hasText: people.a.name }).waitFor();
    await shot(page, "listing-buyer-view");
    await page.click("#buy");
    await page.waitForURL(/\/orders\?placed=/);
    const pending = await orderCard(page, "PENDING");
    await pending.getByRole("button", { name: "Pay now" }).click();
    const paid = await orderCard(page, "PAID");
    assert.match(await paid.textContent(), /€450\.00/);
    await shot(page, "order-paid");
  });

  await step("A signs out, signs in again and ships it", async () => {
    const { page } = A;
    current = page;
    await page.click("#sign-out");
    await page.locator('.nav a[href="/signin"]').waitFor();
    await page.goto("/signin?next=/sales");
    await page.fill('input[name="email"]', people.a.email);
    await page.fill('input[name="password"]', "not the password");
    await page.click('button[type="submit"]');
    await page.locator(".banner-error", { hasText: "invalid email or password" }).waitFor();
    await page.fill('input[name="password"]', password);
    await page.click('button[type="submit"]');
    await page.waitForURL(/\/sales$/);
    await page.locator("#me", { hasText: people.a.name }).waitFor();
    const paid = await orderCard(page, "PAID");
    assert.match(await paid.textContent(), new RegExp(people.b.name));
    await paid.getByRole("button", { name: "Mark as shipped" }).click();
    await orderCard(page, "SHIPPED");
    await shot(page, "sale-shipped");
  });

  await step("B confirms delivery and leaves a 5-star review", async () => {
    const { page } = B;
    current = page;
    await page.click('.nav a[href="/orders"]');
    const shipped = await orderCard(page, "SHIPPED");
    await shipped.getByRole("button", { name: "Confirm delivery" }).click();
    const delivered = await orderCard(page, "DELIVERED");
    await shot(page, "order-delivered");

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
    await shot(page, "review-posted");
  });

  await step("A's seller page shows the rating", async () => {
    const { page } = A;
    current = page;
    await page.click("#me");
    await page.waitForURL(new RegExp(`/users/${sellerId}$`));
    await page.locator('#seller-rating .rating[data-average="5.0"][data-count="1"]').waitFor();
    await page.locator('#reviews .review[data-rating="5"]').waitFor();
    const stats = await page.locator(".stats").textContent();
    assert.match(stats, /Sold\s*1/);
    await shot(page, "seller-rating");
  });

  await step("a second buyer sees the item as sold", async () => {
    const C = await newUser();
    const { page } = C;
    current = page;
    await signUp(page, people.c);
    await page.goto(listingURL);
    await page.locator('.sold-note[data-status="SOLD"]').waitFor();
    await page.locator('.listing-head .badge[data-status="SOLD"]').waitFor();
    assert.equal(await page.locator("#buy").count(), 0, "no Buy button on a sold item");
    await shot(page, "sold-to-second-buyer");

    // Search shows what is for sale: the sold item is gone from it.
    await page.goto("/?q=leica+rangefinder");
    await page.locator(".empty", { hasText: "No listings match" }).waitFor();
    await C.context.close();
  });

  await A.context.close();
  await B.context.close();
});


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

// Marks the page's document, so that a later check can tell it was not reloaded.
async function markDocument(page) {
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
}

async function assertNotReloaded(page, what) {
  assert.equal(await page.evaluate(() => window.__sameDocument === true), true, `${what} was not reloaded`);
}

test("open pages show changes as they happen, without a reload", async (t) => {
  let broken = false;
  const step = async (name, fn) => {
    if (broken) return t.test(name, { skip: "an earlier step failed" });
    return t.test(name, async () => {
      try {
        await fn();
      } catch (err) {
        broken = failed = true;
        await shot(current, `FAILED-${name.replace(/\W+/g, "-")}`).catch(() => {});
        throw err;
      }
    });
  };
  const seller = await newUser();
  const buyer = await newUser();
  const visitor = await newUser(); // never signs in
  const title = "Braun SK 4 radio-phonograph";
  let listing;
  let listingURL = "";
  let orderId = "";
  let getListings = 0;
  visitor.page.on("request", (r) => {
    if (new URL(r.url()).pathname.endsWith("/GetListing")) getListings++;
  });

  await step("the seller lists an item and keeps the sales page open", async () => {
    const { page } = seller;
    current = page;
    await signUp(page, people.d);
    const token = await page.evaluate(() => JSON.parse(localStorage.getItem("swapmeet.session")).token);
    listing = await call("ListingService/CreateListing", {
      title,
      description: "The 'Snow White's Coffin': white lacquered steel, elm side panels, acrylic lid. Radio and turntable both work.",
      category: "music",
      condition: "CONDITION_GOOD",
      price: { currencyCode: "EUR", amountMinor: "120000" },
    }, token);
    listing.token = token;
    listingURL = `/listings/${listing.listingId}`;
    await applied(listing.listingId, listing.consistencyToken);

    await page.locator('.nav a[href="/sales"]').click();
    await page.locator(".empty", { hasText: "No sales yet" }).waitFor();
    await page.locator('.page-orders .live[data-state="live"]').waitFor();
    await markDocument(page);
  });

  await step("a visitor's listing page shows the seller's new price and title", async () => {
    const { page } = visitor;
    current = page;
    await page.goto(listingURL);
    await page.locator("#listing-title", { hasText: title }).waitFor();
    await page.locator(".listing-price", { hasText: "€1,200.00" }).waitFor();
    await page.locator('.listing-facts .live[data-state="live"]').waitFor();
    await markDocument(page);
    const reads = getListings;
    await shot(page, "live-listing-before");

    await call("ListingService/UpdateListing", {
      listingId: listing.listingId,
      expectedVersion: listing.version,
      title: `${title}, 1956`,
      price: { currencyCode: "EUR", amountMinor: "95000" },
      updateMask: "title,price",
    }, listing.token);
    await page.locator(".listing-price", { hasText: "€950.00" }).waitFor();
    await page.locator("#listing-title", { hasText: `${title}, 1956` }).waitFor();
    await assertNotReloaded(page, "the visitor's listing page");
    assert.equal(getListings, reads, "the new state came over the stream, not from a new GetListing");

    // The History section, read again as of the stream's token: the edit,
    // newest first (its price, then its title), over the listing's creation.
    const history = page.locator("#history");
    await history.locator('li[data-field="price"]', { hasText: "€1,200.00 → €950.00" }).waitFor();
    await history.locator('li[data-field="title"]', { hasText: `${title}, 1956` }).waitFor();
    const rows = await history.locator("li").allTextContents();
    assert.match(rows[0], /\d{4}, \d\d:\d\d — price €1,200\.00 → €950\.00$/, `the newest change first: ${JSON.stringify(rows)}`);
    assert.match(rows[1], new RegExp(`— title “${title}” → “${title}, 1956”$`), `then the title: ${JSON.stringify(rows)}`);
    assert.match(rows.at(-1), /— listed at €1,200\.00$/, `the creation last: ${JSON.stringify(rows)}`);
    await history.scrollIntoViewIfNeeded();
    await shot(page, "live-listing-history");
  });

  await step("the buyer buys it: the visitor sees it sold, the seller sees the order", async () => {
    const { page } = buyer;
    current = page;
    await signUp(page, people.e);
    await page.goto(listingURL);
    await page.locator(".listing-price", { hasText: "€950.00" }).waitFor();
    await page.click("#buy");
    await page.waitForURL(/\/orders\?placed=/);
    orderId = new URL(page.url()).searchParams.get("placed");
    await orderCard(page, "PENDING");

    current = visitor.page;
    await visitor.page.locator('.listing-head .badge[data-status="SOLD"]', { hasText: /sold/i }).waitFor();
    await visitor.page.locator('.sold-note[data-status="SOLD"]').waitFor();
    assert.equal(await visitor.page.getByRole("link", { name: "Sign in to buy" }).count(), 0, "nothing to buy on a sold item");
    await visitor.page.locator('#history li[data-field="status"]', { hasText: "Available → Sold" }).waitFor();
    await assertNotReloaded(visitor.page, "the visitor's listing page");
    await shot(visitor.page, "live-listing-sold");

    current = seller.page;
    await seller.page.locator(`.order-card[data-order-id="${orderId}"][data-status="PENDING"]`).waitFor();
    assert.equal(await seller.page.locator(".empty", { hasText: "No sales yet" }).isVisible(), false, "the empty state is gone");
    await assertNotReloaded(seller.page, "the seller's sales page");
    await shot(seller.page, "live-sale-appears");
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
    await shot(page, "live-order-shipped");
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
    await shot(buyer.page, "order-timeline");

    current = page;
    await page.locator('#order-timeline li[data-step="delivered"]', { hasText: `by the buyer, ${people.e.name}` }).waitFor();
    await page.locator('.page-order .badge[data-status="DELIVERED"]').waitFor();
    await assertNotReloaded(page, "the seller's order page");
  });

  await seller.context.close();
  await buyer.context.close();
  await visitor.context.close();
});

test("browse loads the next page as the user scrolls, in price order, and filters by the categories that exist", async () => {
  // 15 posters by one seller, seeded through the API; page size is 12.
  const word = `poster${run}`;
  const seller = await call("UserService/SignUp", { email: `dora.${run}@example.com`, password, displayName: "Dora Maar" });
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
  const { page, context } = await newUser();
  current = page;

  const searches = [];
  page.on("response", async (r) => {
    if (r.url().includes("/SearchListings")) searches.push(`${r.status()} ${decodeURIComponent(r.url()).slice(-120)} -> ${(await r.text().catch(() => "")).length} bytes, ${((await r.text().catch(() => "")).match(/"listingId"/g) ?? []).length} listings`);
  });
  const explain = (err) => async () => {
    const state = await page.evaluate(() => ({ y: scrollY, h: document.documentElement.scrollHeight, sentinel: document.querySelector(".sentinel")?.getBoundingClientRect().top, cards: document.querySelectorAll("#results .listing-card").length, status: document.querySelector(".results-status")?.textContent, more: document.querySelector(".more button")?.hidden }));
    await shot(page, "FAILED-paging");
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
  await shot(page, "browse-infinite-paging");
  // The category filter lists the categories that have listings, with
  // their counts, from the service: "art", which the seller typed, too.
  const art = page.locator('select[name="category"] option[value="art"]');
  await art.waitFor({ state: "attached" });
  assert.match(await art.textContent(), /^art \(\d+\)$/, "the category a seller typed, with its count");
  await context.close();
});

test("queries go over HTTP GET, writes over POST, and the page had no errors", (t) => {
  if (failed) return t.skip("the flow failed");
  const rpc = (name) => requests.filter((r) => new URL(r.url).pathname.endsWith(name));
  for (const q of ["/SearchListings", "/GetListing", "/ListOrders", "/GetUser", "/ListSellerReviews", "/GetOrder", "/ListHistory"]) {
    const calls = rpc(q);
    assert.ok(calls.length > 0, `${q} was called`);
    assert.deepEqual([...new Set(calls.map((c) => c.method))], ["GET"], `${q} uses GET`);
  }
  for (const w of ["/SignUp", "/SignIn", "/SignOut", "/CreateListing", "/CreateMediaUpload", "/ConfirmMediaUpload", "/PlaceOrder", "/MarkOrderPaid", "/MarkOrderShipped", "/ConfirmDelivery", "/CreateReview"]) {
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
  console.log(`screenshots: ${shots} (${n})`);
});
