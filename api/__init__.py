"""The HTTP API: the app factory, its thin routes, and the packages they call by concern."""
