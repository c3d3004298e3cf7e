// The OpenID Connect provider of Visio's tests: panva's oidc-provider with its development
// login and consent pages. Any login name signs in; configured by the environment (IDP_*).
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider, { interactionPolicy } from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const port = Number(env('IDP_PORT'));
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

// Ask for the login name on every authorization request, even within a provider session, so
// one test client or browser can sign in as several people in turn.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'every_time',
  'every authorization request signs in afresh',
  (ctx) => (ctx.oidc.result?.login
    ? interactionPolicy.Check.NO_NEED_TO_PROMPT
    : interactionPolicy.Check.REQUEST_PROMPT),
));

const provider = new Provider(env('IDP_ISSUER'), {
  clients: [{
    client_id: env('IDP_CLIENT_ID'),
    client_secret: env('IDP_CLIENT_SECRET'),
    redirect_uris: env('IDP_REDIRECT_URIS').split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  responseTypes: ['code'],
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Scope claims go into the ID token as well, for relying parties that only read it.
  conformIdTokenClaims: false,
  pkce: { methods: ['S256'], required: () => true },
  features: { devInteractions: { enabled: true } },
  interactions: { policy },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test', alg: 'RS256', use: 'sig' }] },
  async findAccount(ctx, login) {
    return {
      accountId: login,
      claims: () => ({
        sub: login,
        email: `${login}@visio.test`,
        email_verified: true,
        name: login.charAt(0).toUpperCase() + login.slice(1),
      }),
    };
  },
});

for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error']) {
  provider.on(event, (ctx, error) => console.error(`${event}: ${error.message} ${error.error_description ?? ''}`));
}

provider.listen(port, '127.0.0.1', () => console.log('ready'));
