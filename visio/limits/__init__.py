"""Limits: how much each caller may ask (callers), the budgets they spend (budgets), and
the size of a request's body (bodies). Shared between server processes by
visio.cluster.limits."""
