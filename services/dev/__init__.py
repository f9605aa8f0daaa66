"""Development stand-ins: what a county supplies in production and a laptop does not.

The token issuer (统一身份认证 stand-in), the receiver that plays the SMS/WeChat/12345
gateways, the embedded PostgreSQL and Kafka-protocol broker (devstack), and the launcher
that `make run` starts. Nothing here runs in production.
"""
