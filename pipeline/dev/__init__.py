"""Local development: services (fake-gcs-server, emulators), worker processes, samples, the demo."""
