"""Who is calling: OpenID Connect sign-in, sessions in cookies, CSRF protection."""
