"""Services change state; ``app.api`` only translates HTTP to these calls and back."""
