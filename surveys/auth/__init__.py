"""Staff sign-in: `service` (passwords, sessions, tokens, password reset),
`access` (the user loader and role decorators), `views` (the pages)."""
