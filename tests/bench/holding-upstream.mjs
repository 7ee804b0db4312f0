// An HTTPS server that responds to every request like a Kubernetes watch that has nothing more to
// report: status 200, a chunked body with one event, then nothing until the client closes.
// tests/bench/run uses it to hold many idle streams open through a proxy.
//
// Usage: node holding-upstream.mjs CERT KEY PORT_FILE LIFETIME_SECONDS
// It writes its port to PORT_FILE once listening and exits after LIFETIME_SECONDS.
import fs from 'node:fs';
import https from 'node:https';

const [certFile, keyFile, portFile, lifetimeArgument] = process.argv.slice(2);
const lifetimeSeconds = Number(lifetimeArgument);
if (!certFile || !keyFile || !portFile || !(lifetimeSeconds > 0)) {
    console.error('usage: node holding-upstream.mjs CERT KEY PORT_FILE LIFETIME_SECONDS');
    process.exit(2);
}

const event = JSON.stringify({
    type: 'ADDED',
    object: {kind: 'ConfigMap', apiVersion: 'v1', metadata: {name: 'bench', namespace: 'default'}},
}) + '\n';

const server = https.createServer(
    {cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile)},
    (request, response) => {
        response.writeHead(200, {'Content-Type': 'application/json'});
        response.write(event);
    });
// Node's defaults would end held requests after 300 s and idle sockets after 5 s.
server.requestTimeout = 0;
server.timeout = 0;
server.keepAliveTimeout = 0;
server.listen(0, '127.0.0.1', () => {
    fs.writeFileSync(`${portFile}.tmp`, `${server.address().port}\n`);
    fs.renameSync(`${portFile}.tmp`, portFile);
});
setTimeout(() => process.exit(0), lifetimeSeconds * 1000);
