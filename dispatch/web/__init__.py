"""The web pages: sign-in, operator console, provider phone page, family page, manager dashboard.
Everything they load is served from here (no CDN: a district office may have no internet)."""
