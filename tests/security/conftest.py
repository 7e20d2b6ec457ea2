"""The Twilio fixtures (signed webhooks) for the security tests too."""

from tests.hotline.conftest import twilio, twilio_env  # noqa: F401
