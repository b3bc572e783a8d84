"""The ESP metadata the app puts on every email: how a webhook finds its email again.

Delivery writes it on each message it sends; tracking reads it back from each webhook
event. Both import it from here, so reading a webhook needs nothing of the sending side.
"""

#: The key under which every email's id travels in the ESP metadata, for reconciliation.
METADATA_ID_KEY = "transactional_mail_id"
