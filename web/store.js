// What the visitor gave the page, kept in this browser (IndexedDB) so that a reload loses none of
// it: the teaching classes and their photos (as the Blobs given), and a live training run's last
// checkpoint. IndexedDB rather than Cache Storage because these are records, not responses; its
// API is small enough here not to need a library.

const DB = "alexnet-page";
const PHOTOS = "photos"; // {className, name, blob}, in the order given
const KEPT = "kept"; // "classes": [name]; "live": a live run's checkpoint

let opened = null;

function open() {
  if (!("indexedDB" in self)) return Promise.resolve(null);
  opened ||= new Promise((resolve) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(PHOTOS, { autoIncrement: true });
      request.result.createObjectStore(KEPT);
    };
    request.onsuccess = () => resolve(request.result);
    // A browser that refuses storage (private modes, quota) still runs the page, keeping nothing.
    request.onerror = () => resolve(null);
  });
  return opened;
}

// One request in its own transaction; resolves with its result (undefined when nothing is kept).
async function request(store, mode, make) {
  const db = await open();
  if (!db) return undefined;
  return new Promise((resolve, reject) => {
    const r = make(db.transaction(store, mode).objectStore(store));
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export const keepPhoto = (className, name, blob) => request(PHOTOS, "readwrite", (s) => s.add({ className, name, blob }));
export const keptPhotos = async () => (await request(PHOTOS, "readonly", (s) => s.getAll())) || [];
export const keep = (key, value) => request(KEPT, "readwrite", (s) => s.put(value, key));
export const kept = (key) => request(KEPT, "readonly", (s) => s.get(key));
export const forget = (key) => request(KEPT, "readwrite", (s) => s.delete(key));

// Everything above, gone (the page's "forget" button).
export async function forgetAll() {
  const db = await open();
  if (db) db.close();
  opened = null;
  await new Promise((resolve) => {
    const r = indexedDB.deleteDatabase(DB);
    r.onsuccess = r.onerror = r.onblocked = () => resolve();
  });
}
