"""Control-plane pieces Rails (``app``) and Workhorse both run: fault rules and how to carry
them out. It imports neither, so Workhorse still never imports ``app``."""
