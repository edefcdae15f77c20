"""The running service around the engine: settings, runtime, auth, REST API, CLI."""
