"""Events of the monitors: storage, unknown clusters, webhooks, MQTT and server-sent events."""
