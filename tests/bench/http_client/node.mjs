// Node side of the client bench: N GETs over C concurrent loops, kept-alive connections.
// usage: node node.mjs fetch|http URL N C  -> "rps p50_us p99_us errors"
import http from "node:http";

const [mode, url, N, C] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
const agent = new http.Agent({ keepAlive: true, maxSockets: C });

function getHttp() {
  return new Promise((resolve) => {
    http.get(url, { agent }, (res) => {
      let n = 0;
      res.on("data", (d) => { n += d.length; });
      res.on("end", () => resolve(res.statusCode === 200 && n > 0));
    }).on("error", () => resolve(false));
  });
}
async function getFetch() {
  try {
    const r = await fetch(url);
    const b = await r.arrayBuffer();
    return r.status === 200 && b.byteLength > 0;
  } catch { return false; }
}
const get = mode === "fetch" ? getFetch : getHttp;

const lat = new Array(N);
let next = 0, errors = 0;
async function worker() {
  while (next < N) {
    const i = next++;
    const t0 = process.hrtime.bigint();
    const ok = await get();
    lat[i] = Number(process.hrtime.bigint() - t0) / 1000;
    if (!ok) errors++;
  }
}
await Promise.all(Array.from({ length: C }, () => get()));   // warm up the connections
const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: C }, worker));
const took = Number(process.hrtime.bigint() - t0) / 1e9;
lat.sort((a, b) => a - b);
console.log(`${Math.floor(N / took)} ${Math.floor(lat[Math.ceil(N * 0.5) - 1])} ${Math.floor(lat[Math.ceil(N * 0.99) - 1])} ${errors}`);
process.exit(0);
