"""The sync: the pure mapping pipeline (:mod:`.pipeline`), map workers (:mod:`.workers`), one store
(:mod:`.runner`), many stores (:mod:`.many`), quarantine retries (:mod:`.quarantine`)."""
