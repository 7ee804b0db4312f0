// A namespace service for the cluster proxy's `namespaces.mode: service`, for the end-to-end
// test. It serves HTTPS on 127.0.0.1. For every POST whose JSON body is {"user": ...,
// "groups": [...]} it returns {"namespaces": [...]} with the namespaces that --grant gives that
// user, or an empty list. It appends each request body it parsed to --record-file as one JSON
// line.
//
// Usage: node namespace-service.mjs --cert FILE --key FILE --ready-file FILE --record-file FILE
//            [--grant USER=NAMESPACE,NAMESPACE]...
// Once listening it writes {"url": "https://127.0.0.1:PORT/namespaces"} to the ready file.

import fs from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';

const MAX_BODY_BYTES = 64 * 1024;

const { values } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    'ready-file': { type: 'string' },
    'record-file': { type: 'string' },
    grant: { type: 'string', multiple: true, default: [] },
  },
});
for (const required of ['cert', 'key', 'ready-file', 'record-file']) {
  if (!values[required]) {
    console.error(`namespace-service: missing --${required}`);
    process.exit(2);
  }
}

const grants = new Map();
for (const grant of values.grant) {
  const separator = grant.lastIndexOf('=');
  if (separator <= 0) {
    console.error(`namespace-service: invalid --grant ${JSON.stringify(grant)}: expected USER=NAMESPACE,NAMESPACE`);
    process.exit(2);
  }
  grants.set(grant.slice(0, separator), grant.slice(separator + 1).split(',').filter(Boolean));
}

function respond(response, status, object) {
  response.writeHead(status, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify(object));
}

const server = https.createServer(
  { cert: fs.readFileSync(values.cert), key: fs.readFileSync(values.key) },
  (request, response) => {
    if (request.method !== 'POST') {
      console.error(`namespace-service: rejected ${request.method} ${request.url}, expected POST`);
      respond(response, 405, { error: `method ${request.method} not allowed, expected POST` });
      return;
    }
    const chunks = [];
    let size = 0;
    request.on('data', (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
      }
    });
    request.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        console.error(`namespace-service: rejected a request body of ${size} bytes, larger than ${MAX_BODY_BYTES}`);
        respond(response, 413, { error: `request body larger than ${MAX_BODY_BYTES} bytes` });
        return;
      }
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        console.error(`namespace-service: request body is not JSON: ${error.message}`);
        respond(response, 400, { error: 'request body is not JSON' });
        return;
      }
      fs.appendFileSync(values['record-file'], JSON.stringify(body) + '\n');
      respond(response, 200, { namespaces: grants.get(body?.user) ?? [] });
    });
  },
);

server.listen(0, '127.0.0.1', () => {
  const line = JSON.stringify({ url: `https://127.0.0.1:${server.address().port}/namespaces` }) + '\n';
  // Written under another name and renamed, so a reader never sees half a line.
  fs.writeFileSync(`${values['ready-file']}.new`, line);
  fs.renameSync(`${values['ready-file']}.new`, values['ready-file']);
  console.error(`namespace-service: listening on ${JSON.parse(line).url}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    console.error(`namespace-service: stopping on ${signal}`);
    process.exit(0);
  });
}
