"""The demo's broker transport: Kombu's filesystem transport, each message written whole.

Kombu's own creates a message's file, then writes into it. A worker polling the folder in
between takes the empty file and fails to decode it, which stops the worker
("Unrecoverable error: JSONDecodeError"). It happens when a worker's own task publishes
while the worker polls: a digest window closing queues its email, the outbox sweep
re-enqueues one. Here a message is written under a name the consumer skips, then renamed
to its real name: a rename within a folder is atomic, so a consumer sees whole messages.

``shop_site/settings.py`` names this class in ``CELERY_BROKER_TRANSPORT`` for the default
``filesystem://`` broker; Redis and RabbitMQ need nothing of the kind.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

#: Appended to a message's file name while it is written: the consumer only reads
#: names ending in ``.<queue>.msg``.
PARTIAL = ".partial"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: written in full, then renamed into view."""
        # The name kombu gives (its time prefix orders the queue), in the same folder.
        filename = os.path.join(self.data_folder_out,
                                f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg")
        try:
            with open(filename + PARTIAL, "wb") as partial:
                partial.write(str_to_bytes(dumps(payload)))
            os.replace(filename + PARTIAL, filename)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {filename!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
