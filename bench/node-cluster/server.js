// The seed article's master-worker, as written there: the master forks WORKERS processes that
// share one port and re-forks any that exits; each worker answers "Hello from Worker!".
// Usage: WORKERS=2 PORT=18100 node server.js   (binds 127.0.0.1 only)
// NODE_CLUSTER_SCHED_POLICY=rr (Node's default on Linux: the primary accepts and hands each
// connection to the next worker in turn) or none (every worker accepts from the shared socket).
"use strict";
const cluster = require("node:cluster");
const crypto = require("node:crypto");
const http = require("node:http");

const workers = Number(process.env.WORKERS || 1);
const port = Number(process.env.PORT || 8000);
const MAX_CPU_MS = 5000;

// As the worker's /work/cpu: hash on the only thread for about `ms`, answering nothing else.
function burnCpu(ms) {
  const deadline = performance.now() + ms;
  let digest = Buffer.from("workerlab");
  let rounds = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < 500; i++) digest = crypto.createHash("sha256").update(digest).digest();
    rounds += 500;
  }
  return rounds;
}

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on("exit", (worker, code, signal) => {
    if (!process.exitCode) cluster.fork(); // the master's job: replace the dead worker
  });
  const stop = () => {
    process.exitCode = 0;
    for (const id in cluster.workers) cluster.workers[id].kill();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  // JSON like the worker's `/`, with the pid that served it, so both answer a comparable body.
  http
    .createServer((req, res) => {
      const url = new URL(req.url, "http://127.0.0.1");
      let answer = { message: "Hello from Worker!", pid: process.pid };
      if (url.pathname === "/work/cpu") {
        const ms = Math.min(Math.max(Number(url.searchParams.get("ms")) || 0, 0), MAX_CPU_MS);
        answer = { pid: process.pid, ms, hash_rounds: burnCpu(ms) };
      }
      const body = JSON.stringify(answer);
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    })
    .listen(port, "127.0.0.1");
}
