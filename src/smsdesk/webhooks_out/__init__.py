"""Webhooks to other systems: subscriptions, signed deliveries, retries, replay.

event (in the transaction that caused it)
  └─► WebhookHub.emit ──► webhook_deliveries (pending, one per subscriber)
                             └─► WebhookDeliverer: claim (lease) ─► POST (signed)
                                    ├─► 2xx: delivered
                                    ├─► otherwise: pending again, later (backoff)
                                    └─► 24 h after the event, or subscription gone: dead
"""
