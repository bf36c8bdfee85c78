"""A local stand-in for Spartoo's seller web service (see ``plugins/spartoo/SANDBOX.md``)."""
