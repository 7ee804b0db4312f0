// The load of tests/bench/run soak. It opens WATCHES watch streams through the proxy, each on its
// own TLS connection, then sends GET requests at RATE per second over kept-alive connections
// for SECONDS while the watches stay open. It prints "open" when the watches are open, "warm"
// once WARMUP_SECONDS of the steady load have passed, and at the end one JSON line of counts.
// Every failure is counted and none is retried.
//
// Usage: SOAK_AUTHORIZATION=VALUE node soak-client.mjs URL CA_FILE WATCHES RATE WARMUP_SECONDS
//            SECONDS EVENT_SECONDS
// URL is the proxy's cluster URL; the client adds the paths. EVENT_SECONDS is the upstream's
// event interval, from which the events each watch must receive follow.
import fs from 'node:fs';
import https from 'node:https';

const [baseUrl, caFile, ...numbers] = process.argv.slice(2);
const [watchCount, rate, warmupSeconds, seconds, eventSeconds] = numbers.map(Number);
if (!baseUrl || !caFile || numbers.length !== 5 || !(watchCount > 0) || !(rate > 0) ||
    !(warmupSeconds >= 0) || !(seconds > warmupSeconds) || !(eventSeconds > 0)) {
    console.error('usage: SOAK_AUTHORIZATION=VALUE node soak-client.mjs URL CA_FILE WATCHES RATE ' +
                  'WARMUP_SECONDS SECONDS EVENT_SECONDS');
    process.exit(2);
}

const ca = fs.readFileSync(caFile);
const headers = {Authorization: process.env.SOAK_AUTHORIZATION ?? ''};
const watchAgent = new https.Agent({keepAlive: false, maxSockets: Infinity, ca});
const requestAgent = new https.Agent({keepAlive: true, maxSockets: 16, ca});
const watchPath = '/api/v1/namespaces/default/configmaps?watch=true';
const getPath = '/api/v1/namespaces/default/configmaps/soak';
// More requests than this waiting for a response means the proxy fell behind the rate.
const maxInFlight = 256;

const counts = {
    watchesOpened: 0,
    watchOpenFailures: 0,
    watchesEndedEarly: 0,
    watchErrors: 0,
    watchesStalled: 0,
    events: 0,
    requests: 0,
    requestFailures: 0,
    requestsDropped: 0,
};
const failureSamples = [];
let finishing = false;

function noteFailure(message) {
    if (failureSamples.length < 5)
        failureSamples.push(message);
}

// Opens one watch and resolves once its first event arrived. Events are counted per watch.
function openWatch(index, watch) {
    return new Promise((resolve) => {
        const request = https.get(`${baseUrl}${watchPath}`, {agent: watchAgent, headers}, (response) => {
            if (response.statusCode !== 200) {
                counts.watchOpenFailures += 1;
                noteFailure(`watch ${index}: status ${response.statusCode}`);
                response.resume();
                resolve();
                return;
            }
            let pending = '';
            response.setEncoding('utf8');
            response.on('data', (chunk) => {
                pending += chunk;
                let newline;
                while ((newline = pending.indexOf('\n')) >= 0) {
                    pending = pending.slice(newline + 1);
                    watch.events += 1;
                    counts.events += 1;
                }
                if (!watch.open && watch.events > 0) {
                    watch.open = true;
                    counts.watchesOpened += 1;
                    resolve();
                }
            });
            response.on('error', (error) => {
                counts.watchErrors += 1;
                noteFailure(`watch ${index}: ${error.message}`);
            });
            response.on('close', () => {
                if (!finishing) {
                    counts.watchesEndedEarly += 1;
                    noteFailure(`watch ${index} ended before the run did`);
                }
                resolve();
            });
        });
        watch.request = request;
        request.on('error', (error) => {
            if (finishing)
                return;
            if (!watch.open)
                counts.watchOpenFailures += 1;
            noteFailure(`watch ${index}: ${error.message}`);
            resolve();
        });
    });
}

let inFlight = 0;
function sendRequest() {
    if (inFlight >= maxInFlight) {
        counts.requestsDropped += 1;
        return;
    }
    inFlight += 1;
    counts.requests += 1;
    const request = https.get(`${baseUrl}${getPath}`, {agent: requestAgent, headers}, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => { body += chunk; });
        response.on('end', () => {
            inFlight -= 1;
            if (response.statusCode !== 200 || !body.includes('"name":"soak"')) {
                counts.requestFailures += 1;
                noteFailure(`GET: status ${response.statusCode}`);
            }
        });
    });
    request.on('error', (error) => {
        inFlight -= 1;
        counts.requestFailures += 1;
        noteFailure(`GET: ${error.message}`);
    });
}

// Watches open in batches, so the proxy is not asked for every TLS handshake at once.
const watches = [];
const batchSize = 50;
for (let first = 0; first < watchCount; first += batchSize) {
    const batch = [];
    for (let index = first; index < Math.min(first + batchSize, watchCount); index++) {
        const watch = {events: 0, open: false, request: null};
        watches.push(watch);
        batch.push(openWatch(index, watch));
    }
    await Promise.all(batch);
}
console.log(`open ${counts.watchesOpened}`);

const eventsAtStart = watches.map((watch) => watch.events);
const tick = 100;
const perTick = rate * tick / 1000;
let owed = 0;
const sender = setInterval(() => {
    owed += perTick;
    for (; owed >= 1; owed -= 1)
        sendRequest();
}, tick);
setTimeout(() => console.log('warm'), warmupSeconds * 1000);

await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
clearInterval(sender);
for (let waited = 0; inFlight > 0 && waited < 100; waited++)
    await new Promise((resolve) => setTimeout(resolve, 100));
counts.requestFailures += inFlight;
if (inFlight > 0)
    noteFailure(`${inFlight} GET requests had no response 10 s after the load ended`);

// A watch whose events stopped arriving is stalled even if its connection is still open: the
// upstream sent one every EVENT_SECONDS, and one interval of slack covers the timer's phase.
const expectedEvents = Math.floor(seconds / eventSeconds) - 1;
watches.forEach((watch, index) => {
    if (watch.open && watch.events - eventsAtStart[index] < expectedEvents) {
        counts.watchesStalled += 1;
        noteFailure(`watch ${index} received ${watch.events - eventsAtStart[index]} events, ` +
                    `expected at least ${expectedEvents}`);
    }
});

finishing = true;
for (const watch of watches)
    watch.request?.destroy();
requestAgent.destroy();
console.log(JSON.stringify({...counts, failureSamples}));
process.exit(0);
