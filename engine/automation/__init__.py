"""Automation: what happens by itself — business calendars, SLA clocks, durable timers,
assignment rules, triggers and scheduled rules, the outbox (e-mails, webhooks).

Public surface: `Automation` (service.py: the store's subscriber and the sweeper), `calendar`
(working-time arithmetic), `timers`, `outbox`, `webhooks`, `spec` (the config language part).
"""
