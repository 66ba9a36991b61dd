// The service worker: keeps the page and its code in Cache Storage so that, after one visit, the
// page works with the network off. It fetches the page's files when it installs (the page's own
// first requests may come before it controls them), then answers network-first (a new version is
// picked up at once) with the cache as the fallback. The model's weights are app.js's to cache,
// once they have loaded.
const CACHE = "alexnet-page-v9";
const PAGE = [
  "./",
  "index.html",
  "app.js",
  "teach.js",
  "model.js",
  "live.js",
  "store.js",
  "worker.js",
  "split.js",
  "style.css",
  "alexnet-web.js",
  "alexnet-web_bg.wasm",
  "model/manifest.json",
  "model/check.jpg",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(PAGE);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("alexnet-page-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  // Weights files are app.js's to cache (only once they have loaded).
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.endsWith(".safetensors")) return;
  event.respondWith(
    (async () => {
      try {
        const response = await fetch(request);
        if (response.ok && response.type === "basic") {
          const cache = await caches.open(CACHE);
          await cache.put(request, response.clone());
        }
        return response;
      } catch (offline) {
        const cached = await caches.match(request, { ignoreSearch: request.mode === "navigate" });
        if (cached) return cached;
        throw offline;
      }
    })(),
  );
});
