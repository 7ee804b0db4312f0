// Opens COUNT concurrent HTTPS GET requests to URL, each on its own TLS connection, waits until
// every response has sent its first body chunk, prints "open COUNT", and then keeps them all
// open until stdin closes or LIFETIME_SECONDS pass. tests/bench/run measures a proxy's memory while
// the streams are held.
//
// Usage: node idle-streams.mjs URL CA_FILE COUNT LIFETIME_SECONDS [AUTHORIZATION]
import fs from 'node:fs';
import https from 'node:https';

const [url, caFile, countArgument, lifetimeArgument, authorization] = process.argv.slice(2);
const count = Number(countArgument);
const lifetimeSeconds = Number(lifetimeArgument);
if (!url || !caFile || !(count > 0) || !(lifetimeSeconds > 0)) {
    console.error('usage: node idle-streams.mjs URL CA_FILE COUNT LIFETIME_SECONDS [AUTHORIZATION]');
    process.exit(2);
}

// Connections are opened in batches, so the proxy is not asked for COUNT TLS handshakes at once.
const batchSize = 50;
const ca = fs.readFileSync(caFile);
const agent = new https.Agent({keepAlive: false, maxSockets: Infinity, ca});
const headers = authorization ? {Authorization: authorization} : {};

function openStream(index) {
    return new Promise((resolve, reject) => {
        const request = https.get(url, {agent, headers}, (response) => {
            if (response.statusCode !== 200) {
                reject(new Error(`stream ${index}: status ${response.statusCode}, expected 200`));
                return;
            }
            response.once('data', () => resolve());
            response.on('error', (error) => console.error(`stream ${index} failed: ${error.message}`));
        });
        request.on('error', reject);
    });
}

setTimeout(() => process.exit(0), lifetimeSeconds * 1000);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

try {
    for (let first = 0; first < count; first += batchSize) {
        const batch = [];
        for (let index = first; index < Math.min(first + batchSize, count); index++)
            batch.push(openStream(index));
        await Promise.all(batch);
    }
    console.log(`open ${count}`);
} catch (error) {
    console.error(`Failed to open ${count} streams to ${url}: ${error.message}`);
    process.exit(1);
}
