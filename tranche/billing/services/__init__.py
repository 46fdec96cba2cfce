"""Billing's writes, one module per concern:

drafts      a milestone's completion makes its draft; reopening cancels it; draft edits
sending     a draft gets its number, PaymentIntent and payment link; the customer is emailed
cancelling  a draft, or a sent invoice nobody paid
payments    money in and out: the one settlement path, manual payments, the sandbox card
intents     the PaymentIntent kept in step with the invoice (number, amount due)
reminders   overdue marking and reminder emails
reconcile   payments whose webhook never came
periodic    what the worker runs every TICK_MINUTES
emails      the customer emails about an invoice

Import from the module itself (`from tranche.billing.services.sending import
invoice_send`): this package re-exports nothing, so importing one concern never loads
the others.
"""
