"""HTTP API, dashboard and probes served by every worker (Faust web, aiohttp).

Faust imports every module here at worker start (autodiscovery), which registers the
pages; ``server`` holds the web driver the app uses.
"""
