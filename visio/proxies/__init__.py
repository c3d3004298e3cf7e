"""Who the client is behind reverse proxies: addresses and networks (addresses), the
X-Forwarded-For and Forwarded headers of trusted proxies (trusted), and HAProxy's PROXY
protocol (proxy_protocol)."""
