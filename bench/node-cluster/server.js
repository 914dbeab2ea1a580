// The seed article's master-worker, as written there: the master forks WORKERS processes that
// share one port and re-forks any that exits; each worker answers "Hello from Worker!".
// Usage: WORKERS=2 PORT=18100 node server.js   (binds 127.0.0.1 only)
"use strict";
const cluster = require("node:cluster");
const http = require("node:http");

const workers = Number(process.env.WORKERS || 1);
const port = Number(process.env.PORT || 8000);

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
  // JSON like the worker's `/`, so both answer a comparable body.
  http
    .createServer((req, res) => {
      const body = JSON.stringify({ message: "Hello from Worker!", pid: process.pid });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    })
    .listen(port, "127.0.0.1");
}
