"""The ESP metadata the app puts on every email: how a webhook finds its email again.

Delivery writes it on each message it sends; tracking reads it back from each webhook
event. Both import it from here, so reading a webhook needs nothing of the sending side.
"""

#: The key under which every email's id travels in the ESP metadata, for reconciliation.
METADATA_ID_KEY = "transactional_mail_id"

#: Keys of what else every email's metadata tells the ESP (and its webhooks and
#: dashboards): its template, and its trigger and category when it has them. Short:
#: Postmark allows metadata keys of 20 characters at most.
METADATA_TEMPLATE_KEY = "tm_template"
METADATA_TRIGGER_KEY = "tm_trigger"
METADATA_CATEGORY_KEY = "tm_category"
