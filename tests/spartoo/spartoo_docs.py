"""Hand-written Spartoo XML documents shared by the Spartoo tests."""

from __future__ import annotations

HOME_ORDER = """
<order>
  <orders_id>3FF75E96C3434E92</orders_id>
  <customers>
    <customers_firstname>Zoé</customers_firstname>
    <customers_lastname>Lefèvre</customers_lastname>
    <customers_company>Atelier Zoé</customers_company>
    <customers_street_address>12 rue des Écoles</customers_street_address>
    <customers_suburb>Bâtiment B</customers_suburb>
    <customers_city>Lyon</customers_city>
    <customers_postcode>69003</customers_postcode>
    <customers_state></customers_state>
    <customers_country>France</customers_country>
    <customers_email_address>zoe@example.org</customers_email_address>
    <customers_telephone>+33 4 72 00 00 00</customers_telephone>
  </customers>
  <delivery>
    <delivery_firstname>Marco</delivery_firstname>
    <delivery_lastname>Rossi</delivery_lastname>
    <delivery_company/>
    <delivery_street_address>Via Roma 5</delivery_street_address>
    <delivery_suburb>Scala C</delivery_suburb>
    <delivery_city>Torino</delivery_city>
    <delivery_postcode>10121</delivery_postcode>
    <delivery_state>TO</delivery_state>
    <delivery_country>Italie</delivery_country>
  </delivery>
  <payment_method>Carte bancaire</payment_method>
  <payment_price>1.50</payment_price>
  <shipping_price>4.90</shipping_price>
  <shipping_name>Colissimo domicile</shipping_name>
  <order_total>135.30</order_total>
  <orders_status_name>Commande Vérifiée</orders_status_name>
  <orders_status_id>11</orders_status_id>
  <date_purchased>2024-07-14 10:30:00</date_purchased>
  <last_modified>2024-07-14 11:00:05</last_modified>
  <products>
    <product>
      <products_reference>REF-BOOT</products_reference>
      <products_name>Bottine Ténéré</products_name>
      <products_qty>2</products_qty>
      <products_spartoo>123456</products_spartoo>
      <products_manufacturers>Kickers</products_manufacturers>
      <products_size>38</products_size>
      <products_size_reference>REF-BOOT-38</products_size_reference>
      <products_color>Noir</products_color>
      <products_price_unit>59.90</products_price_unit>
      <products_price_unit_with_reduce>49.90</products_price_unit_with_reduce>
      <products_final_price>99.80</products_final_price>
    </product>
    <product>
      <products_reference>REF-SOCK</products_reference>
      <products_name>Chaussettes</products_name>
      <products_qty>1</products_qty>
      <products_spartoo>654321</products_spartoo>
      <products_manufacturers>Falke</products_manufacturers>
      <products_size/>
      <products_size_reference/>
      <products_color/>
      <products_price_unit>29.10</products_price_unit>
      <products_price_unit_with_reduce>29.10</products_price_unit_with_reduce>
      <products_final_price>29.10</products_final_price>
    </product>
  </products>
  <errors/>
</order>
"""

RELAY_ORDER = """
<order>
  <orders_id>A1B2C3</orders_id>
  <customers>
    <customers_firstname>Ana</customers_firstname>
    <customers_lastname>García</customers_lastname>
    <customers_street_address>Calle Mayor 1</customers_street_address>
    <customers_city>Madrid</customers_city>
    <customers_postcode>28013</customers_postcode>
    <customers_country>ES</customers_country>
    <customers_email_address>ana@example.es</customers_email_address>
    <customers_telephone>+34 600 000 000</customers_telephone>
  </customers>
  <delivery>
    <delivery_firstname>Ana</delivery_firstname>
    <delivery_lastname>García</delivery_lastname>
    <relay_info>
      <relay_id>4521</relay_id>
      <relay_type>MR</relay_type>
      <relay_name>Tabac de la Gare</relay_name>
      <relay_address>3 place de la Gare</relay_address>
      <relay_city>Perpignan</relay_city>
      <relay_postcode>66000</relay_postcode>
      <relay_country_iso>FR</relay_country_iso>
    </relay_info>
    <delivery_company/>
    <delivery_street_address/>
    <delivery_suburb/>
    <delivery_city/>
    <delivery_postcode/>
    <delivery_state/>
    <delivery_country/>
  </delivery>
  <payment_method>PayPal</payment_method>
  <payment_price>0.00</payment_price>
  <shipping_price>0,00</shipping_price>
  <shipping_name>Point relais</shipping_name>
  <order_total>45.00</order_total>
  <orders_status_name>Preparation in progress</orders_status_name>
  <orders_status_id>2</orders_status_id>
  <date_purchased>2024-03-31T02:30:00</date_purchased>
  <last_modified/>
  <products>
    <product>
      <products_reference>REF-SANDAL</products_reference>
      <products_name>Sandale</products_name>
      <products_qty>1</products_qty>
      <products_spartoo>777</products_spartoo>
      <products_manufacturers>Birkenstock</products_manufacturers>
      <products_size>40</products_size>
      <products_size_reference>REF-SANDAL-40</products_size_reference>
      <products_color>Beige</products_color>
      <products_price_unit>45.00</products_price_unit>
      <products_price_unit_with_reduce/>
      <products_final_price>45.00</products_final_price>
    </product>
  </products>
</order>
"""

NO_ADDRESS_ORDER = """
<order>
  <orders_id>NOADDR1</orders_id>
  <customers><customers_firstname>Jan</customers_firstname><customers_lastname>Kowalski</customers_lastname>
    <customers_country>Pologne</customers_country></customers>
  <delivery><delivery_firstname>Jan</delivery_firstname><delivery_lastname>Kowalski</delivery_lastname>
    <delivery_street_address/><delivery_city/><delivery_country/></delivery>
  <order_total>10.00</order_total><orders_status_id>11</orders_status_id>
  <date_purchased>2024-01-05 09:00:00</date_purchased>
  <products><product><products_reference>R</products_reference><products_qty>1</products_qty>
    <products_price_unit>10.00</products_price_unit></product></products>
</order>
"""


def document(*orders: str) -> bytes:
    """A full xml_export_orders.php answer holding ``orders``."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<root><orders>' + "".join(orders) + "</orders></root>").encode()


def envelope(code: int, description: str = "") -> bytes:
    """A ``statut`` envelope answer."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><root><statut><id>{code}</id>'
        f"<description>{description}</description></statut></root>"
    ).encode()


def simple_order(order_id: str, status: str = "11") -> str:
    """A small valid order with a home address."""
    return (
        f"<order><orders_id>{order_id}</orders_id>"
        "<customers><customers_firstname>Léa</customers_firstname><customers_lastname>Martin</customers_lastname>"
        "<customers_country>France</customers_country></customers>"
        "<delivery><delivery_firstname>Léa</delivery_firstname><delivery_lastname>Martin</delivery_lastname>"
        "<delivery_street_address>1 rue A</delivery_street_address><delivery_city>Paris</delivery_city>"
        "<delivery_postcode>75001</delivery_postcode><delivery_country>France</delivery_country></delivery>"
        "<shipping_price>0.00</shipping_price><payment_price>0.00</payment_price><order_total>20.00</order_total>"
        f"<orders_status_id>{status}</orders_status_id><date_purchased>2024-05-01 12:00:00</date_purchased>"
        "<products><product><products_reference>R1</products_reference><products_name>Basket</products_name>"
        "<products_qty>1</products_qty><products_price_unit>20.00</products_price_unit>"
        "<products_price_unit_with_reduce>20.00</products_price_unit_with_reduce></product></products>"
        "</order>"
    )


def chunked(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into chunks of ``size`` bytes."""
    return [data[i : i + size] for i in range(0, len(data), size)]
