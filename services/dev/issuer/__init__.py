"""A development token issuer: signs sign-in tokens (JWTs) for the demo users of
``services/directory/demo_org.json`` and publishes its public keys, so the services can
run with ``AUTH_MODE=jwt`` on a laptop exactly as they will against the province's
identity provider.

    GET  /.well-known/jwks.json               the public keys (JWKS)
    GET  /.well-known/openid-configuration    issuer, jwks_uri, token endpoint
    GET  /users                               the demo users, by role
    POST /token {"user": "demo-dept-clerk"}   a signed token for that user
    POST /keys/rotate                         a new signing key; the old one stays published

It is a development tool: it signs a token for anyone who asks, so it listens on the
loopback interface only and refuses another address unless ``ISSUER_ALLOW_REMOTE=true``.
No database; keys live in memory or in ``ISSUER_KEY_FILE`` (PEM, created when missing).
"""
