"""The HTTP glue: routing, middleware, errors, bodies, query strings, CORS, TLS, the
OpenAPI document and the transport under uvicorn."""
