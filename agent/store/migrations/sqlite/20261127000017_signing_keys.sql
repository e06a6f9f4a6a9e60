-- The public keys of the tokens each replica signs when it asks a Backstage permission backend
-- about a caller. The backend fetches them from any replica (GET .backstage/auth/v1/jwks.json),
-- so every replica publishes its key here; a key no replica renews drops out when it expires.
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    jwk        TEXT NOT NULL,              -- the public key as a JSON Web Key
    expires_at BIGINT NOT NULL             -- milliseconds since the epoch
);
