// A static server of the built page (dist/) on 127.0.0.1, for the scripts that drive it.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".css": "text/css", ".json": "application/json", ".jpg": "image/jpeg" };

// Resolves to the listening server; its URL is `http://127.0.0.1:${server.address().port}/`.
// `more`: other folders served under a prefix, e.g. {"/bench/": "/some/folder"}.
export async function serveDist(dist, more = {}) {
  const server = http.createServer((req, res) => {
    const name = new URL(req.url, "http://x").pathname;
    const [prefix, root] = Object.entries(more).find(([p]) => name.startsWith(p)) || ["/", dist];
    const rest = name.slice(prefix.length);
    const file = path.join(root, rest === "" ? "index.html" : rest);
    if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return server;
}
