"""The push: attempt and record one shipment (:mod:`.outbox`, public), many senders at once (:mod:`.concurrent`)."""
