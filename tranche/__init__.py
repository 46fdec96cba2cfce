"""Tranche: a client portal for project-based businesses that bill by milestone."""
