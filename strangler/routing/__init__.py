"""One order's trip through this process: the router, the dispatcher, the runtime, wake-ups."""
