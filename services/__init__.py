"""Provider registry: day-care centers, elder canteens, home-care providers and their caregivers."""
