// A real OpenID provider (the certified `oidc-provider` package) for hallpass's OIDC tests,
// on 127.0.0.1 at a free port. Its development login form lets a test sign in as anyone:
// POST /interaction/<uid> with prompt=login&login=<account>&password=x, then
// prompt=consent; GET /interaction/<uid>/abort denies.
//
// Environment: REDIRECT_URIS (comma-separated callback URLs of hallpass), CLIENT_ID,
// CLIENT_SECRET. Prints `issuer <url>` on stdout once it listens.
//
// Accounts: the login name is the subject. Its email is `<login>@example.com`, verified,
// unless the name starts with `unverified-`; `noemail-...` has none.
import http from 'node:http';
import Provider from 'oidc-provider';

const redirectUris = (process.env.REDIRECT_URIS || '').split(',').filter(Boolean);
const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.CLIENT_ID || 'hallpass',
      client_secret: process.env.CLIENT_SECRET || 'hallpass-secret',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    }],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'name'],
    },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          const claims = { sub: id, preferred_username: id, name: `User ${id}` };
          if (!id.startsWith('noemail-')) {
            claims.email = `${id}@example.com`;
            claims.email_verified = !id.startsWith('unverified-');
          }
          return claims;
        },
      };
    },
    // Tests run over plain HTTP on 127.0.0.1.
    cookies: { keys: ['hallpass-test-only'] },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  console.log(`issuer ${issuer}`);
});
