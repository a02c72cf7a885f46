"""MarginFace's Python client package: ``marginface.client`` talks to a MarginFace server over HTTP."""
