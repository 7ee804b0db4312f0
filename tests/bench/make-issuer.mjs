// Creates an OpenID Connect issuer that needs no browser, for tests/bench/run cluster-proxy: an
// RSA 2048 signing key, the discovery document, the JSON Web Key Set and one RS256 ID token that
// expires in an hour. It uses Node's built-in crypto only.
//
// Usage: node make-issuer.mjs ISSUER_URL DOCUMENT_DIR TOKEN_FILE SUBJECT EMAIL GROUPS
// GROUPS is a comma-separated list. It writes DOCUMENT_DIR/openid-configuration.json, which names
// ISSUER_URL/jwks as jwks_uri, and DOCUMENT_DIR/jwks.json. The ID token goes to TOKEN_FILE
// (mode 600) and is never printed. The private key stays in memory.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const usage = 'usage: node make-issuer.mjs ISSUER_URL DOCUMENT_DIR TOKEN_FILE SUBJECT EMAIL GROUPS';
const [issuer, documentDir, tokenFile, subject, email, groupList] = process.argv.slice(2);
if (!issuer || !documentDir || !tokenFile || !subject || !email || groupList === undefined) {
    console.error(usage);
    process.exit(2);
}
if (!issuer.startsWith('https://') || issuer.endsWith('/')) {
    console.error(`make-issuer.mjs: the issuer URL "${issuer}" must start with https:// and ` +
                  'have no trailing slash, because tokens must name it character for character.');
    process.exit(2);
}

const base64url = (data) => Buffer.from(data).toString('base64url');
const keyId = 'bench-rs256';
const {publicKey, privateKey} = crypto.generateKeyPairSync('rsa', {modulusLength: 2048});
const publicJwk = publicKey.export({format: 'jwk'});

const discovery = {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
};
const jwks = {keys: [{kty: 'RSA', use: 'sig', alg: 'RS256', kid: keyId, n: publicJwk.n, e: publicJwk.e}]};

const issuedAt = Math.floor(Date.now() / 1000);
const header = {alg: 'RS256', typ: 'JWT', kid: keyId};
const claims = {
    iss: issuer,
    aud: 'lamplighter',
    sub: subject,
    email,
    groups: groupList === '' ? [] : groupList.split(','),
    iat: issuedAt,
    exp: issuedAt + 3600,
};
const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
const signature = crypto.sign('sha256', Buffer.from(signingInput), privateKey);

fs.mkdirSync(documentDir, {recursive: true});
fs.writeFileSync(path.join(documentDir, 'openid-configuration.json'), JSON.stringify(discovery));
fs.writeFileSync(path.join(documentDir, 'jwks.json'), JSON.stringify(jwks));
fs.writeFileSync(tokenFile, `${signingInput}.${base64url(signature)}\n`, {mode: 0o600});
