-- Config for the server's end-to-end tests: short timeouts so each limit is reached quickly.
return {
  app = "server_app",
  limits = { header_timeout = 1, body_timeout = 2, handler_timeout = 1, keepalive_timeout = 5,
             stream_idle_timeout = 1 },
  grace = 5,
  greeting = "hello",
}
