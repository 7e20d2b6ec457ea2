"""Twilio voice and SMS webhooks, TwiML builders and the SMS gateway (the only Twilio importer)."""
