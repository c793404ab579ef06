"""Billing: plans, subscriptions, invoices, payments and dunning. `money` holds the exact arithmetic
every other part builds on."""
