-- `moongate serve` config for the http_hello benchmark.
return { app = "app" }
