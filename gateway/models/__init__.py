"""Models: pack import and the version store (activation, rollback, promotion gate, tests)."""
