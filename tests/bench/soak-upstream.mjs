// An HTTPS server in place of the API server for tests/bench/run soak. A GET whose query
// has watch=true gets a response like a Kubernetes watch: status 200, a chunked body, and one event
// every EVENT_SECONDS until the client closes. Any other GET gets a small ConfigMap. A request
// without the bearer token from SOAK_ID_TOKEN gets 401, so the proxy must inject it every time.
//
// Usage: SOAK_ID_TOKEN=TOKEN node soak-upstream.mjs CERT KEY PORT_FILE EVENT_SECONDS LIFETIME_SECONDS
// It writes its port to PORT_FILE once listening and exits after LIFETIME_SECONDS.
import fs from 'node:fs';
import https from 'node:https';

const [certFile, keyFile, portFile, eventArgument, lifetimeArgument] = process.argv.slice(2);
const eventSeconds = Number(eventArgument);
const lifetimeSeconds = Number(lifetimeArgument);
const expectedAuthorization = `Bearer ${process.env.SOAK_ID_TOKEN ?? ''}`;
if (!certFile || !keyFile || !portFile || !(eventSeconds > 0) || !(lifetimeSeconds > 0) ||
    !process.env.SOAK_ID_TOKEN) {
    console.error('usage: SOAK_ID_TOKEN=TOKEN node soak-upstream.mjs CERT KEY PORT_FILE ' +
                  'EVENT_SECONDS LIFETIME_SECONDS');
    process.exit(2);
}

const configMap = JSON.stringify({
    kind: 'ConfigMap',
    apiVersion: 'v1',
    metadata: {name: 'soak', namespace: 'default', resourceVersion: '1'},
    data: {greeting: 'hello'},
});
const watches = new Set();
let resourceVersion = 1;

const server = https.createServer(
    {cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile)},
    (request, response) => {
        if (request.headers.authorization !== expectedAuthorization) {
            response.writeHead(401, {'Content-Type': 'application/json'});
            response.end('{"kind":"Status","status":"Failure","code":401}');
            return;
        }
        const url = new URL(request.url, 'https://upstream');
        if (url.searchParams.get('watch') !== 'true') {
            response.writeHead(200, {'Content-Type': 'application/json'});
            response.end(configMap);
            return;
        }
        response.writeHead(200, {'Content-Type': 'application/json'});
        response.write(watchEvent());
        watches.add(response);
        response.on('close', () => watches.delete(response));
    });

function watchEvent() {
    resourceVersion += 1;
    return JSON.stringify({
        type: 'MODIFIED',
        object: {kind: 'ConfigMap', apiVersion: 'v1',
                 metadata: {name: 'soak', namespace: 'default',
                            resourceVersion: String(resourceVersion)}},
    }) + '\n';
}

setInterval(() => {
    const event = watchEvent();
    for (const response of watches)
        response.write(event);
}, eventSeconds * 1000);

// Node's defaults would end held requests after 300 s and idle sockets after 5 s.
server.requestTimeout = 0;
server.timeout = 0;
server.keepAliveTimeout = 0;
server.listen(0, '127.0.0.1', () => {
    fs.writeFileSync(`${portFile}.tmp`, `${server.address().port}\n`);
    fs.renameSync(`${portFile}.tmp`, portFile);
});
setTimeout(() => process.exit(0), lifetimeSeconds * 1000);
