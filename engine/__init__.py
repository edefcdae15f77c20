"""The metadata runtime of the platform: config → tables, records, rules and state machines."""
