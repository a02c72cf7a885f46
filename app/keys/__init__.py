"""Admin management of API keys over HTTP (the ``/keys`` API); the store is app/store/keys.py."""
