"""The command-centre console (指挥中心工作台): a web page for 综治中心 / 12345 centre staff.

A thin backend-for-frontend: it serves static HTML/JS/CSS (plain ES modules, no build step),
signs a demo user in through the issuer and keeps the session in a signed HttpOnly cookie,
forwards API calls to the services with that user's identity (the Bearer token *and* the
X-Actor-* headers, so it works with ``AUTH_MODE=jwt`` and ``AUTH_MODE=headers`` alike), and
streams board snapshots over server-sent events (``GET /live``). It reads only the services'
public HTTP APIs and keeps no database.
"""
