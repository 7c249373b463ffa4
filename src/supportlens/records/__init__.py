"""Records beside the tickets: customers with their contacts, and the JSON Schemas a workspace
declares for the custom fields of its tickets, customers and responses (seed 001's records model)."""
