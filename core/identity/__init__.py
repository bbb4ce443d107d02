"""People and how they prove who they are: users (known by their phone number), login
codes sent by WhatsApp (`otp`), sessions and their tokens (`sessions`), PINs and step-up
tokens (`pins`); and staff members, who may use the support console (`staff`)."""
