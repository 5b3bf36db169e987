// A small hostile OpenID provider for hallpass's OIDC tests, and a GitHub-style plain
// OAuth 2.0 stand-in, on 127.0.0.1 at a free port (node's own http and crypto only).
//
// OpenID side: discovery, /jwks, /auth (no login: it answers at once with a code for the
// given state), /token. What the ID token gets wrong is chosen per sign-in by a `mode`
// parameter the test appends to hallpass's authorization URL:
//   ok, wrong_aud, wrong_iss, wrong_nonce, expired, unknown_kid (signed by a key never
//   published), rotated_kid (signed by a key published only after the first /jwks fetch:
//   a fresh fetch must find it), wrong_azp (aud holds two clients, azp the other one).
// GitHub-style side: /oauth/authorize, /oauth/token, /oauth/user ({id: <number>, login,
// email}); the user is chosen by a `login` parameter appended to the authorization URL.
//
// Environment: CLIENT_ID (default hallpass). Prints `issuer <url>` once it listens.
import http from 'node:http';
import crypto from 'node:crypto';

const clientId = process.env.CLIENT_ID || 'hallpass';
const key1 = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const key2 = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = (pair, kid) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' });
const codes = new Map();
let jwksFetches = 0;

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function sign(claims, pair, kid) {
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64(claims)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), pair.privateKey).toString('base64url')}`;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => resolve(new URLSearchParams(data)));
  });
}

const server = http.createServer(async (req, res) => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const url = new URL(req.url, issuer);
  const q = url.searchParams;
  switch (url.pathname) {
    case '/.well-known/openid-configuration':
      return send(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    case '/jwks': {
      jwksFetches += 1;
      const keys = [jwk(key1, 'k1')];
      if (jwksFetches > 1) keys.push(jwk(key2, 'rotated'));
      return send(res, 200, { keys });
    }
    case '/auth':
    case '/oauth/authorize': {
      const code = crypto.randomBytes(16).toString('hex');
      codes.set(code, { mode: q.get('mode') || 'ok', nonce: q.get('nonce'), login: q.get('login') || 'octocat' });
      const back = new URL(q.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state'));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    case '/token':
    case '/oauth/token': {
      const body = await readBody(req);
      const grant = codes.get(body.get('code'));
      codes.delete(body.get('code'));
      if (!grant) return send(res, 400, { error: 'invalid_grant' });
      if (url.pathname === '/oauth/token') {
        return send(res, 200, { access_token: `gho_${grant.login}`, token_type: 'bearer', scope: 'read:user' });
      }
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        iss: issuer, aud: clientId, sub: `hostile-${grant.mode}`, nonce: grant.nonce, iat: now, exp: now + 300,
        email: `hostile-${grant.mode}@example.com`, email_verified: true,
      };
      let pair = key1;
      let kid = 'k1';
      switch (grant.mode) {
        case 'wrong_aud': claims.aud = 'someone-else'; break;
        case 'wrong_iss': claims.iss = 'http://evil.example'; break;
        case 'wrong_nonce': claims.nonce = 'not-the-nonce'; break;
        case 'expired': claims.iat = now - 900; claims.exp = now - 600; break;
        case 'unknown_kid': pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }); kid = 'never'; break;
        case 'rotated_kid': pair = key2; kid = 'rotated'; break;
        case 'wrong_azp': claims.aud = [clientId, 'other-client']; claims.azp = 'other-client'; break;
        default: break;
      }
      return send(res, 200, {
        access_token: `at-${grant.mode}`, token_type: 'Bearer', expires_in: 3600, id_token: sign(claims, pair, kid),
      });
    }
    case '/oauth/user': {
      const auth = req.headers.authorization || '';
      if (!auth.startsWith('Bearer gho_')) return send(res, 401, { message: 'Bad credentials' });
      const login = auth.slice('Bearer gho_'.length);
      const id = [...login].reduce((n, c) => n * 31 + c.charCodeAt(0), 7) % 1000000;
      return send(res, 200, { id, login, email: `${login}@users.example.com` });
    }
    default:
      return send(res, 404, { error: 'not_found' });
  }
});
server.listen(0, '127.0.0.1', () => {
  console.log(`issuer http://127.0.0.1:${server.address().port}`);
});
