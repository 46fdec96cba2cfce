"""Billing's HTTP surface. `invoices` serves invoices, payments and the webhook;
`projects` serves projects as the portal shows them (each milestone with its invoice),
milestone completion and reopening, and quote acceptance: everything that shows or
changes projects and invoices together."""
