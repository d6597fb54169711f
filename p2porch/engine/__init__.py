"""p2porch.engine: a small Docker Engine API client of p2porch's own (shell: sockets, stdlib only).

endpoint: ``DOCKER_HOST`` / ``--docker-host`` -> where to connect (unix://, tcp:// with or without TLS).
client: ``EngineClient``, the calls the agent and the overlay make (containers, images, events, logs,
networks), one connection per call. streams: decoding of streamed bodies. registry_auth: the
``X-Registry-Auth`` header of a pull, from the docker CLI's config and credential helpers.
"""
