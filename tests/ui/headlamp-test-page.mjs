// Serves one HTML page over HTTPS on 127.0.0.1, a stand-in for Headlamp's cluster overview, so
// that tests/ui/screenshots can show lamplighter-headlamp-window without a cluster. It writes its
// URL to READY_FILE once it listens, and runs until it is stopped.
//
// Usage: node headlamp-test-page.mjs READY_FILE CERT_FILE KEY_FILE

import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createServer } from 'node:https';

const [readyFile, certFile, keyFile] = process.argv.slice(2);
if (!readyFile || !certFile || !keyFile) {
  console.error('usage: node headlamp-test-page.mjs READY_FILE CERT_FILE KEY_FILE');
  process.exit(2);
}

const namespaces = [
  ['default', 'Active', '2 pods'],
  ['kube-system', 'Active', '11 pods'],
  ['kube-public', 'Active', '0 pods'],
  ['team-a', 'Active', '6 pods'],
  ['team-b', 'Active', '3 pods'],
];

const rows = namespaces
  .map(([name, phase, pods]) => `<tr><td>${name}</td><td><span class="ok">${phase}</span></td><td>${pods}</td></tr>`)
  .join('\n');

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cluster overview</title>
<style>
  body { margin: 0; font-family: "DejaVu Sans", sans-serif; color: #1f2a37; background: #f5f6f8; }
  header { background: #1f2a37; color: #fff; padding: 14px 24px; font-size: 18px; }
  .note { background: #fff7e0; color: #6b4e00; padding: 8px 24px; font-size: 13px; }
  .layout { display: flex; }
  nav { width: 200px; background: #fff; border-right: 1px solid #d5dbe3; min-height: 80vh; padding-top: 12px; }
  nav a { display: block; padding: 8px 20px; color: #1f2a37; text-decoration: none; }
  nav a.active { background: #eef5ff; border-left: 3px solid #3b82f6; }
  main { flex: 1; padding: 20px 28px; }
  table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #d5dbe3; }
  th, td { text-align: left; padding: 10px 14px; border-bottom: 1px solid #e6e9ee; }
  th { background: #f0f2f5; font-weight: 600; }
  .ok { color: #05603a; background: #d1fadf; padding: 2px 8px; border-radius: 10px; font-size: 13px; }
</style>
</head>
<body>
<header>Cluster overview: prod</header>
<div class="note">Test page served on 127.0.0.1 in place of Headlamp, to show Lamplighter's Headlamp window.</div>
<div class="layout">
<nav><a class="active" href="#">Cluster</a><a href="#">Namespaces</a><a href="#">Workloads</a><a href="#">Network</a><a href="#">Storage</a></nav>
<main>
<h2>Namespaces</h2>
<table><thead><tr><th>Name</th><th>Status</th><th>Pods</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</main>
</div>
</body>
</html>
`;

const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
const server = createServer(tls, (request, response) => {
  // The query is ignored, as a launch URL's ticket would be after the proxy has taken it.
  const path = new URL(request.url, 'https://127.0.0.1').pathname;
  if (request.method !== 'GET' || path !== '/') {
    response.writeHead(404, { 'Content-Type': 'text/plain' });
    response.end('not found\n');
    return;
  }
  response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  response.end(page);
});

server.listen(0, '127.0.0.1', () => {
  const url = `https://127.0.0.1:${server.address().port}/`;
  writeFileSync(`${readyFile}.part`, url);
  renameSync(`${readyFile}.part`, readyFile);
  console.log(`listening ${url}`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
