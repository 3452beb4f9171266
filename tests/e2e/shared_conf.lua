-- Config for tests/e2e/shared_workers.sh: the counter app on moongate.shared.
return { app = "shared_app", limits = { handler_timeout = 5 }, access_log = false }
