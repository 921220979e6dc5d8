"""Session-bound encrypted tokens: ``from auth.auth import requires_auth, create_enc_token``."""
