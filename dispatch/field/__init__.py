"""The provider's day on its phone: offers, today's jobs, canteen meal counts, day-care attendees."""
