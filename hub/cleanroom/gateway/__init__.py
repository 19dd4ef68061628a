"""The egress gateway: every byte between a researcher's browser and a workspace.

A hub-side process (a JupyterHub managed service, outside every container) that the proxy
sends ``/user/<name>/<project>/`` to. It authenticates every request as the workspace's
owner, allows only the routes JupyterLab needs, checks that what answers is the real
server (a per-start secret), reads kernel messages, caps and rate-limits what goes
towards the browser, counts every byte against the researcher's budget and puts the
totals on the record. See ``docs/architecture.md`` (the gateway).
"""
