"""Background jobs: module-level functions that take ids, run by RQ or in process."""
