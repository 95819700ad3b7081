"""HTTP plumbing shared by the routes: errors, middleware, dependencies, card uploads, metrics."""
