// The service worker: keeps the page and its code in Cache Storage as they are fetched, so a later
// visit works with the network off. The network comes first (a new version is picked up at once);
// the cache answers when it fails. The model itself is cached by app.js, once it has loaded.
const CACHE = "alexnet-page-v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

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
