"""The Spartoo plugin keeps the contract against its sandbox, like any other plugin."""

from __future__ import annotations

from connector_core.testing.contract import feature_key
from connector_core.testing.pytest_plugin import ContractSuite


class TestSpartooContract(ContractSuite):
    """Every contract check, run on the installed spartoo plugin against the Spartoo sandbox."""

    marketplace = "spartoo"


def test_shipment_capabilities_are_checked_against_pushes() -> None:
    """Spartoo's `shipment_*` capability names fold onto the shipment fields the kit verifies."""
    names = ["shipment_tracking_number", "shipment_carrier_fee", "Customer e-mail", "item options"]
    assert [feature_key(n) for n in names] == ["tracking_number", "carrier_fee", "customer_email", "item_options"]
