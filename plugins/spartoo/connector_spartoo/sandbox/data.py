"""Deterministic, realistic Spartoo data for the sandbox.

Everything is derived from a ``seed`` and an index, lazily: order number
``i`` is generated only when it is asked for, from a random generator seeded
with ``(seed, i)``, so 100,000 orders cost no memory until they are written
and the same seed always gives the same orders. The only per-order state kept
in memory is what the sandbox must be able to change (status, dates, tracking
number, update counters), in compact arrays (see :class:`OrderBook`).

Dates are relative to an ``anchor`` time (the sandbox's start by default):
pass the same ``anchor`` and ``seed`` to get byte-identical documents.

The XML written here uses the tag names of Spartoo's ``xml_export_orders``
and ``xml_export_products`` documents, as its seller documentation gives them.
"""

from __future__ import annotations

import functools
import json
import random
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How the sandbox writes ``date_purchased`` and ``last_modified`` (Paris time)."""

_M64 = (1 << 64) - 1


def _load_code_lists() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("spartoo_code_lists.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


CODE_LISTS = _load_code_lists()
STATUS_NAMES: dict[int, dict[str, str]] = {int(s["code"]): s for s in CODE_LISTS["orders_status"]}
COLOURS: list[dict[str, str]] = CODE_LISTS["colors"]
CODE_LIST_SIZES: list[str] = list(dict.fromkeys(s["size"] for s in CODE_LISTS["product_sizes_sample"]))
CURRENCY_CODES = {c["code"] for c in CODE_LISTS["currencies"]} | {"CHF"}


# --------------------------------------------------------------------------- sites and countries


@dataclass(frozen=True)
class Site:
    """One Spartoo country site: its currency, language and buyers' countries (ISO, weight)."""

    code: str
    currency: str
    rate: float  # site currency per euro
    language: str  # "fr" or "en": language of colour and status names
    countries: tuple[tuple[str, int], ...]
    weight: int  # share of orders


SITES: dict[str, Site] = {
    s.code: s
    for s in (
        Site("com", "EUR", 1.0, "fr", (("FR", 88), ("BE", 6), ("LU", 3), ("MC", 3)), 40),
        Site("co.uk", "GBP", 0.86, "en", (("GB", 92), ("IE", 8)), 10),
        Site("it", "EUR", 1.0, "en", (("IT", 100),), 10),
        Site("es", "EUR", 1.0, "en", (("ES", 90), ("PT", 10)), 8),
        Site("de", "EUR", 1.0, "en", (("DE", 85), ("AT", 15)), 10),
        Site("eu", "EUR", 1.0, "en", (("NL", 30), ("GR", 25), ("BG", 15), ("PT", 15), ("CY", 15)), 6),
        Site("se", "SEK", 11.2, "en", (("SE", 100),), 4),
        Site("pl", "PLN", 4.3, "en", (("PL", 100),), 6),
        Site("com.hr", "EUR", 1.0, "en", (("HR", 100),), 3),
        Site("ch", "CHF", 0.95, "fr", (("CH", 100),), 3),
    )
}
"""Decision 1 of the project: the sites and their currencies."""

# ISO code -> (English name, French name, calling code)
COUNTRIES: dict[str, tuple[str, str, str]] = {
    "FR": ("France", "France", "33"),
    "BE": ("Belgium", "Belgique", "32"),
    "LU": ("Luxembourg", "Luxembourg", "352"),
    "MC": ("Monaco", "Monaco", "377"),
    "GB": ("United Kingdom", "Royaume-Uni", "44"),
    "IE": ("Ireland", "Irlande", "353"),
    "IT": ("Italy", "Italie", "39"),
    "ES": ("Spain", "Espagne", "34"),
    "PT": ("Portugal", "Portugal", "351"),
    "DE": ("Germany", "Allemagne", "49"),
    "AT": ("Austria", "Autriche", "43"),
    "NL": ("Netherlands", "Pays-Bas", "31"),
    "GR": ("Greece", "Grèce", "30"),
    "BG": ("Bulgaria", "Bulgarie", "359"),
    "CY": ("Cyprus", "Chypre", "357"),
    "SE": ("Sweden", "Suède", "46"),
    "PL": ("Poland", "Pologne", "48"),
    "HR": ("Croatia", "Croatie", "385"),
    "CH": ("Switzerland", "Suisse", "41"),
}

# name pools: (first names, last names) per script/language
_NAMES: dict[str, tuple[Sequence[str], Sequence[str]]] = {
    "fr": (
        (
            "Hélène",
            "François",
            "Zoé",
            "Gaëlle",
            "Jérôme",
            "Bénédicte",
            "Noël",
            "Anaïs",
            "Loïc",
            "Maëlys",
            "Chloé",
            "Timothée",
            "Léa",
            "Aurélien",
            "Cécile",
            "Marie-José",
            "Jean-Baptiste",
        ),
        (
            "Lefèvre",
            "Dubois",
            "Moreau",
            "Bélanger",
            "Girard",
            "Faure",
            "Leroy",
            "Château",
            "Desprès",
            "Mercier",
            "N'Diaye",
            "Le Goff",
            "Bonnaire-Ducrès",
            "Rousseau",
        ),
    ),
    "en": (
        ("Oliver", "Amelia", "Siobhán", "Seán", "Harriet", "George", "Niamh", "Rhys", "Eilidh", "Tom"),
        ("O'Brien", "Smith-Jones", "Taylor", "MacDonald", "Ní Bhriain", "Evans", "Patel", "Walsh"),
    ),
    "it": (
        ("Niccolò", "Giulia", "Lucía", "Francesco", "Chiara", "Pietro", "Ilaria", "Gioele"),
        ("Rossi", "Esposito", "D'Angelo", "Bianchi", "Colombo", "De Luca", "Fabbrì"),
    ),
    "es": (
        ("Íñigo", "María José", "Begoña", "Álvaro", "Núria", "João", "Inês", "Sofía"),
        ("Muñoz", "Peña", "García", "Fernández", "Ibáñez", "Gonçalves", "Araújo", "Castañeda"),
    ),
    "de": (
        ("Jürgen", "Lena", "Ömer", "Käthe", "Maximilian", "Sören", "Jörg", "Anneliese"),
        ("Müller", "Schröder", "Weiß", "Groß", "Köhler", "Öztürk", "Straßburger", "Hoffmann"),
    ),
    "nl": (
        ("Daan", "Sanne", "Joëlle", "Bram", "Fenna", "Sem"),
        ("de Vries", "van den Berg", "Jansen", "Bakker", "van 't Hek", "Visser"),
    ),
    "el": (
        ("Γιώργος", "Μαρία", "Δημήτρης", "Ελένη", "Νίκος", "Κατερίνα"),
        ("Παπαδόπουλος", "Οικονόμου", "Γεωργίου", "Νικολάου", "Καραγιάννη"),
    ),
    "bg": (
        ("Иван", "Мария", "Георги", "Елена", "Димитър", "Ольга"),
        ("Петров", "Иванова", "Димитров", "Смирнова", "Георгиев"),
    ),
    "sv": (
        ("Åsa", "Björn", "Märta", "Linnéa", "Örjan", "Elsa"),
        ("Öberg", "Andersson", "Ångström", "Lindqvist", "Sjöström"),
    ),
    "pl": (
        ("Łukasz", "Żaneta", "Grzegorz", "Małgorzata", "Paweł", "Agnieszka", "Jędrzej"),
        ("Wójcik", "Brzęczyszczykiewicz", "Kowalczyk", "Nowak", "Wiśniewska", "Łęcka"),
    ),
    "hr": (
        ("Đurđa", "Ivan", "Matej", "Željka", "Luka", "Ana"),
        ("Kovačić", "Šimić", "Horvat", "Babić", "Jurić", "Đukić"),
    ),
    "ar": (
        ("محمد", "فاطمة", "يوسف", "ليلى", "Karim", "Yasmina"),
        ("العلي", "بن علي", "حداد", "Benali", "El Amrani"),
    ),
    "cjk": (
        ("伟", "娜", "花子", "翔太", "민준", "Mei"),
        ("王", "李", "佐藤", "鈴木", "김", "Nguyễn"),
    ),
}
_COUNTRY_NAMES = {
    "FR": "fr",
    "BE": "fr",
    "LU": "fr",
    "MC": "fr",
    "CH": "fr",
    "GB": "en",
    "IE": "en",
    "IT": "it",
    "ES": "es",
    "PT": "es",
    "DE": "de",
    "AT": "de",
    "NL": "nl",
    "GR": "el",
    "CY": "el",
    "BG": "bg",
    "SE": "sv",
    "PL": "pl",
    "HR": "hr",
}
_FOREIGN_POOLS = ("ar", "cjk", "bg", "pl", "el")

# city, postcode pattern (9 = digit, A = letter) per country
_CITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "FR": (
        ("Paris", "750##"),
        ("Lyon", "6900#"),
        ("Bourg-en-Bresse", "01000"),
        ("Ajaccio", "20000"),
        ("Saint-Étienne", "42000"),
        ("Besançon", "25000"),
        ("Évry-Courcouronnes", "91000"),
        ("Laon", "02000"),
    ),
    "BE": (("Bruxelles", "1000"), ("Liège", "4000"), ("Namur", "5000")),
    "LU": (("Luxembourg", "L-1###"),),
    "MC": (("Monaco", "98000"),),
    "GB": (("London", "SW1A #AA"), ("Manchester", "M# #AB"), ("Cardiff", "CF10 #BH"), ("Edinburgh", "EH# #YZ")),
    "IE": (("Dublin", "D02 X28#"), ("Cork", "T12 #K#")),
    "IT": (("Roma", "001##"), ("Milano", "201##"), ("Napoli", "801##"), ("Aosta", "11100")),
    "ES": (("Barcelona", "080##"), ("Madrid", "280##"), ("A Coruña", "150##"), ("Ávila", "05001")),
    "PT": (("Lisboa", "1000-0##"), ("Porto", "4000-0##")),
    "DE": (("Dresden", "0106#"), ("München", "8033#"), ("Köln", "5066#"), ("Leipzig", "0410#")),
    "AT": (("Wien", "1010"), ("Graz", "8010")),
    "NL": (("Amsterdam", "1012 AB"), ("Utrecht", "3511 ##")),
    "GR": (("Αθήνα", "105 5#"), ("Thessaloniki", "546 2#")),
    "BG": (("София", "1000"), ("Plovdiv", "4000")),
    "CY": (("Λευκωσία", "1010"),),
    "SE": (("Stockholm", "111 ##"), ("Göteborg", "411 0#"), ("Malmö", "211 ##")),
    "PL": (("Warszawa", "00-9##"), ("Kraków", "31-0##"), ("Łódź", "90-0##"), ("Gdańsk", "80-8##")),
    "HR": (("Zagreb", "10000"), ("Split", "21000"), ("Osijek", "31000")),
    "CH": (("Genève", "1201"), ("Zürich", "8001"), ("Lausanne", "100#")),
}
_STREETS: dict[str, tuple[str, ...]] = {
    "fr": (
        "rue de l'Église",
        "avenue Jean-Jaurès",
        "boulevard Saint-Michel",
        "chemin des Écoliers",
        "place du Marché",
        "allée des Tilleuls",
        "impasse Bel-Air",
    ),
    "en": ("High Street", "Church Road", "Victoria Terrace", "St. John's Lane", "Queen's Gardens"),
    "it": ("Via Garibaldi", "Corso Vittorio Emanuele II", "Piazza Duomo", "Via dell'Orso"),
    "es": ("Calle Mayor", "Avenida de la Constitución", "Rúa do Franco", "Carrer de Muntaner"),
    "de": ("Hauptstraße", "Bahnhofstraße", "Am Königsplatz", "Schloßallee"),
    "nl": ("Prinsengracht", "Kalverstraat", "Oudegracht"),
    "el": ("Οδός Ερμού", "Λεωφόρος Αλεξάνδρας", "Tsimiski"),
    "bg": ("бул. Витоша", "ул. Граф Игнатиев"),
    "sv": ("Drottninggatan", "Storgatan", "Östra Hamngatan"),
    "pl": ("ul. Marszałkowska", "ul. Żelazna", "al. Jerozolimskie", "ul. Świętokrzyska"),
    "hr": ("Ilica", "Ulica kralja Zvonimira", "Trg bana Jelačića"),
}
_STATES = {
    "GB": ("Greater London", "Lancashire"),
    "IT": ("RM", "MI", "NA"),
    "ES": ("Barcelona", "Madrid"),
    "DE": ("Sachsen", "Bayern"),
    "CH": ("GE", "ZH", "VD"),
}
_COMPANIES = (
    "Dupont & Fils",
    "Atelier Bleu SARL",
    "Müller GmbH",
    "Boutique Étoile",
    "Kowalski Sp. z o.o.",
    "O'Neill & Sons Ltd",
    "Ελληνική Εταιρεία Α.Ε.",
)
_SUBURBS = ("Bâtiment B", "Appartement 12", "2º B", "c/o Reception", "Résidence Les Pins", "piano 3", "m. 4")

BRANDS = (
    "Kickers",
    "Geox",
    "Birkenstock",
    "Clarks",
    "Converse",
    "New Balance",
    "Dr. Martens",
    "Tamaris",
    "Les Tropéziennes par M Belarbi",
    "Mephisto",
    "Rieker",
    "Pataugas",
    "Aigle",
    "Vagabond",
    "Superga",
    "Camper",
    "Ecco",
    "Palladium",
    "Mustang",
    "Art",
    "Pikolinos",
    "Ünisa",
)
_PRODUCT_KINDS = (
    ("Baskets basses", 5990),
    ("Bottines", 8990),
    ("Sandales", 3990),
    ("Escarpins", 6990),
    ("Mocassins", 7490),
    ("Chaussons", 2490),
    ("Bottes", 12990),
    ("Derbies", 9490),
    ("Ballerines", 4590),
    ("Tongs", 1990),
    ("Sac à main", 5490),
    ("Chaussettes x3", 1290),
)
_MODEL_NAMES = (
    "Ténéré",
    "Mélodie",
    "Été Indien",
    "Câlin",
    "Élégance",
    "Rivière",
    "Zéphyr",
    "Oxford",
    "Nordlys",
    "Sakura 桜",
    "Αθηνά",
    "Kraków",
    "Jardin d'hiver",
    "Rock'n'Roll",
    "Señorita",
)
ADULT_SIZES = ("35", "36", "37", "37.5", "38", "38.5", "39", "40", "41", "42", "42.5", "43", "44", "45", "46")

# shipping: (name, price EUR cents, relay_type or None)
_SHIPPING = {
    "com": (
        ("Colissimo", 490, None),
        ("Chronopost", 990, None),
        ("Mondial Relay", 0, "Mondial Relay"),
        ("Relais Colis", 290, "Relais Colis"),
        ("Livraison gratuite", 0, None),
    ),
    "co.uk": (("Royal Mail", 395, None), ("DPD Next Day", 695, None), ("InPost Locker", 0, "InPost")),
    "pl": (("InPost Paczkomat", 0, "InPost"), ("DPD", 590, None)),
    "es": (("SEUR", 495, None), ("Punto Pack", 0, "Punto Pack")),
    "it": (("BRT", 490, None), ("Fermopoint", 0, "Fermopoint")),
    "*": (("GLS", 495, None), ("UPS Standard", 795, None), ("DHL Express", 1290, None), ("Pickup Point", 0, "Pickup")),
}
# payment method, fee in per-mille of the goods (0 = none)
_PAYMENTS = (
    ("Carte bancaire", 0),
    ("PayPal", 0),
    ("Visa", 0),
    ("Mastercard", 0),
    ("American Express", 0),
    ("Paiement en 3 fois sans frais", 0),
    ("Paiement en 4 fois", 22),
    ("Klarna", 0),
    ("Virement", 0),
    ("Contre-remboursement", 35),
)
_LOCAL_PAYMENTS = {
    "pl": ("Przelewy24", "BLIK"),
    "eu": ("iDEAL", "Bancontact"),
    "se": ("Swish",),
    "ch": ("TWINT", "PostFinance"),
}


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _fill(pattern: str, rng: random.Random) -> str:
    return "".join(str(rng.randrange(10)) if c == "#" else c for c in pattern)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def ean13(body12: int) -> str:
    """A valid EAN-13 from 12 digits (the check digit is computed)."""
    digits = f"{body12:012d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


def format_date(epoch: int) -> str:
    """Write an epoch as Spartoo's ``YYYY-MM-DD HH:MM:SS`` in Paris time."""
    return datetime.fromtimestamp(epoch, PARIS).strftime(DATE_FORMAT)


def parse_request_date(text: str) -> int:
    """Parse the ``date`` field (``YYYY-MM-DD:hh:mm:ss`` Paris time; also ``YYYY-MM-DD hh:mm:ss``, ``YYYY-MM-DD``).

    Returns an epoch in seconds. Raises ``ValueError`` on anything else.
    """
    text = text.strip()
    for fmt in ("%Y-%m-%d:%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return int(naive.replace(tzinfo=PARIS).timestamp())
    raise ValueError(f"date {text!r} is not YYYY-MM-DD:hh:mm:ss")


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class CatalogueProduct:
    """One product of the seller's catalogue (what ``xml_export_products`` lists)."""

    index: int
    reference: str
    name: str
    brand: str
    spartoo_id: int
    colour: dict[str, str]
    price_cents: int  # in euros
    sizes: tuple[tuple[str, str, str, int], ...]  # (size_name, size_reference, ean, quantity)
    photos: tuple[str, ...]
    product_url: str


class Catalogue:
    """The seller's catalogue, derived from the seed; order items always point into it."""

    def __init__(self, seed: int, size: int = 240) -> None:
        self.seed = seed
        self.size = size
        self._products = [self._make(i) for i in range(size)]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> CatalogueProduct:
        return self._products[index]

    def __iter__(self) -> Iterator[CatalogueProduct]:
        return iter(self._products)

    def _make(self, i: int) -> CatalogueProduct:
        rng = random.Random(_splitmix(self.seed * 7919 + i) ^ 0xCA7A)
        kind, base = rng.choice(_PRODUCT_KINDS)
        brand = rng.choice(BRANDS)
        colour = rng.choice(COLOURS)
        name = f"{kind} {rng.choice(_MODEL_NAMES)}"
        prefix = "".join(c for c in brand.upper() if c.isalpha())[:3] or "REF"
        reference = f"{prefix}-{10000 + i * 37 % 90000:05d}-{colour['code']}"
        spartoo_id = 100000 + _splitmix(self.seed ^ (i << 20)) % 9_000_000
        price = max(990, base + rng.randrange(-15, 40) * 100 + 90 - base % 100)
        if kind.startswith(("Sac", "Chaussettes")):
            names: Sequence[str] = ("One size",)
        elif rng.random() < 0.25:  # kids' model: sizes from Spartoo's code list
            start = rng.randrange(0, len(CODE_LIST_SIZES) - 6)
            names = CODE_LIST_SIZES[start : start + rng.randrange(3, 7)]
        else:
            start = rng.randrange(0, 6)
            names = ADULT_SIZES[start : start + rng.randrange(4, 9)]
        sizes = tuple(
            (
                size,
                f"{reference}-{size.replace(' ', '').replace('/', '-')}",
                ean13(376_000_000_000 + (i * 64 + k) % 1_000_000_000),
                rng.choice((0, 1, 2, 3, 5, 8, 12, 20)),
            )
            for k, size in enumerate(names)
        )
        photos = tuple(
            f"https://photos.sandbox.invalid/{spartoo_id}/{n}.jpg" for n in range(1, rng.randrange(2, 9) + 1)
        )
        return CatalogueProduct(
            i,
            reference,
            name,
            brand,
            spartoo_id,
            colour,
            price,
            sizes,
            photos,
            f"https://www.spartoo.com/product-{spartoo_id}.php",
        )

    def xml(self, language: str = "fr") -> str:
        """The ``<products>`` element of ``xml_export_products``."""
        parts = ["<products>"]
        for p in self._products:
            photos = "".join(f"<url{n}>{escape(u)}</url{n}>" for n, u in enumerate(p.photos, 1))
            sizes = "".join(
                f"<size><size_name>{escape(s)}</size_name><size_quantity>{q}</size_quantity>"
                f"<size_reference>{escape(r)}</size_reference><ean>{e}</ean></size>"
                for s, r, e, q in p.sizes
            )
            parts.append(
                f"<product><products_reference>{escape(p.reference)}</products_reference>"
                f"<products_name>{escape(p.name)}</products_name><products_spartoo>{p.spartoo_id}</products_spartoo>"
                f"<products_manufacturers>{escape(p.brand)}</products_manufacturers>"
                f"<products_color>{escape(p.colour[language])}</products_color>"
                f"<products_price>{_money(p.price_cents)}</products_price>"
                f"<product_url>{escape(p.product_url)}</product_url><photos>{photos}</photos>"
                f"<size_list>{sizes}</size_list></product>"
            )
        parts.append("</products>")
        return "".join(parts)


# --------------------------------------------------------------------------- orders

SELLER_STATUSES = (2, 3, 41)
INITIAL_STATUS_MIX = ((11, 70), (2, 12), (3, 10), (41, 4), (45, 2), (47, 2))
"""Share (percent) of each status among the orders generated at start."""
NO_ADDRESS_PER_MILLE = 40
"""Share (per mille) of orders that come with no usable shipping address."""


def _cumulative(pairs: Sequence[tuple[Any, int]]) -> tuple[list[Any], list[int], int]:
    values, bounds, total = [], [], 0
    for value, weight in pairs:
        total += weight
        values.append(value)
        bounds.append(total)
    return values, bounds, total


def _pick(table: tuple[list[Any], list[int], int], h: int) -> Any:
    values, bounds, total = table
    r = h % total
    for value, bound in zip(values, bounds, strict=True):
        if r < bound:
            return value
    return values[-1]  # pragma: no cover


_STATUS_TABLE = _cumulative(INITIAL_STATUS_MIX)


class OrderBook:
    """The sandbox's orders: lazily generated content plus the small mutable state.

    ``count`` orders exist; order ``i`` has a site, an id (an invertible
    scramble of ``i``, so ``oID`` lookups need no index), a status, dates, a
    tracking number and update counters. All methods are thread-safe.
    """

    def __init__(
        self,
        seed: int = 1,
        count: int = 0,
        *,
        sites: Sequence[str] | None = None,
        anchor: int | None = None,
        history_days: float = 30.0,
        catalogue_size: int = 240,
        xml_cache: int = 4096,
    ) -> None:
        self.seed = seed
        self.sites = tuple(sites or SITES)
        for s in self.sites:
            if s not in SITES:
                raise ValueError(f"unknown Spartoo site {s!r}; known sites: {', '.join(SITES)}")
        self.anchor = int(time.time()) if anchor is None else int(anchor)
        self.history = int(history_days * 86400)
        self.catalogue = Catalogue(seed, catalogue_size)
        self._site_table = _cumulative([(k, SITES[s].weight) for k, s in enumerate(self.sites)])
        self._mask = _splitmix(seed ^ 0x5EED) & _M64
        self._k1, self._k2 = 0x9E3779B97F4A7C15, 0xD6E8FEB86659FD93
        self._k1inv, self._k2inv = pow(self._k1, -1, 1 << 64), pow(self._k2, -1, 1 << 64)
        self._lock = threading.RLock()
        self._initial = count
        self.site_of = array("b")
        self.status = array("h")
        self.purchased = array("q")
        self.modified = array("q")
        self.update_count = array("i")
        self.update_requests = array("i")
        self.tracking: dict[int, str] = {}
        self._grow(count, initial=True)
        self._cached_bytes = functools.lru_cache(maxsize=xml_cache)(self._bytes_uncached)

    # ---- identity

    def __len__(self) -> int:
        return len(self.status)

    def orders_id(self, index: int) -> str:
        """Spartoo's ``orders_id`` of order ``index``: 16 hex digits."""
        y = ((index + 1) * self._k1) & _M64
        y ^= y >> 32
        y = (y * self._k2) & _M64
        return f"{y ^ self._mask:016X}"

    def index_of(self, orders_id: str) -> int | None:
        """The index of an ``orders_id``, or ``None`` when no such order exists."""
        try:
            y = int(orders_id.strip(), 16)
        except ValueError:
            return None
        if len(orders_id.strip()) != 16:
            return None
        y ^= self._mask
        y = (y * self._k2inv) & _M64
        y ^= y >> 32
        index = ((y * self._k1inv) & _M64) - 1
        return index if 0 <= index < len(self) else None

    def site(self, index: int) -> str:
        """The site code order ``index`` belongs to."""
        return self.sites[self.site_of[index]]

    def order_key(self, index: int) -> str:
        """The host's order key: ``{site}:{orders_id}``."""
        return f"{self.site(index)}:{self.orders_id(index)}"

    def valid(self, index: int) -> bool:
        """Whether the order has a usable shipping address (the host should import it)."""
        return _splitmix(self.seed * 31 + index * 2 + 1) % 1000 >= NO_ADDRESS_PER_MILLE

    # ---- growth and changes

    def _grow(self, n: int, *, initial: bool) -> list[int]:
        now = int(time.time())
        start = len(self)
        for i in range(start, start + n):
            h = _splitmix((self.seed << 24) ^ i)
            self.site_of.append(_pick(self._site_table, h))
            if initial:
                status = _pick(_STATUS_TABLE, h >> 20)
                purchased = self.anchor - self.history + (i * self.history) // max(n, 1) - (h >> 40) % 600
                modified = purchased + (60 + (h >> 50) % 600 if status == 11 else 3600 + (h >> 44) % 86400)
                modified = min(modified, self.anchor)
                if status in (3, 45, 47):
                    self.tracking[i] = self._tracking_for(i)
            else:
                status, purchased, modified = 11, now, now
            self.status.append(status)
            self.purchased.append(purchased)
            self.modified.append(modified)
            self.update_count.append(0)
            self.update_requests.append(0)
        return list(range(start, start + n))

    def _tracking_for(self, i: int) -> str:
        return f"6A{_splitmix(self.seed + i * 3) % 10**11:011d}"

    def add(self, n: int) -> list[int]:
        """Create ``n`` new status-11 orders dated now; return their indices."""
        if n < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            return self._grow(n, initial=False)

    def select(self, site: str, since: int | None = None, status: int | None = None) -> list[int]:
        """Indices of the site's orders with ``last_modified >= since`` (and the given status)."""
        with self._lock:
            n = len(self)
            site_no = self.sites.index(site) if site in self.sites else -1
            site_of, modified, statuses = self.site_of, self.modified, self.status
            return [
                i
                for i in range(n)
                if site_of[i] == site_no
                and (since is None or modified[i] >= since)
                and (status is None or statuses[i] == status)
            ]

    # ---- content

    def _state(self, index: int) -> tuple[int, int, int, str | None]:
        with self._lock:
            return self.status[index], self.purchased[index], self.modified[index], self.tracking.get(index)

    def order(self, index: int, language: str | None = None) -> dict[str, Any]:
        """Order ``index`` as a nested dict whose keys are Spartoo's tag names (values are strings)."""
        return self._order(index, *self._state(index), language)

    def _order(
        self, index: int, status: int, purchased: int, modified: int, tracking: str | None, language: str | None
    ) -> dict[str, Any]:
        site = SITES[self.site(index)]
        lang = language or site.language
        rng = random.Random(_splitmix((self.seed << 32) ^ index ^ 0x0DE5))
        valid = self.valid(index)

        def person(iso: str) -> tuple[str, str]:
            pool = _COUNTRY_NAMES[iso] if rng.random() < 0.85 else rng.choice(_FOREIGN_POOLS)
            firsts, lasts = _NAMES[pool]
            return rng.choice(firsts), rng.choice(lasts)

        def country_text(iso: str) -> str:
            r = rng.random()
            en, fr, _ = COUNTRIES[iso]
            return iso if r < 0.3 else (fr if r < 0.65 else en)

        def phone(iso: str) -> str:
            r = rng.random()
            national = f"{rng.randrange(1, 8)}{rng.randrange(10**8):08d}"
            if r < 0.08:
                return ""
            if r < 0.45:
                return "0" + " ".join((national[0], national[1:3], national[3:5], national[5:7], national[7:]))
            if r < 0.8:
                return f"+{COUNTRIES[iso][2]} {national[0]} {national[1:5]} {national[5:]}"
            return f"00{COUNTRIES[iso][2]}{national}"

        def address(iso: str) -> dict[str, str]:
            city, pattern = rng.choice(_CITIES[iso])
            streets = _STREETS.get(_COUNTRY_NAMES[iso], _STREETS["en"])
            return {
                "street": f"{rng.randrange(1, 180)} {rng.choice(streets)}",
                "suburb": rng.choice(_SUBURBS) if rng.random() < 0.2 else "",
                "city": city,
                "postcode": _fill(pattern, rng),
                "state": rng.choice(_STATES[iso]) if iso in _STATES and rng.random() < 0.5 else "",
                "country": country_text(iso),
            }

        countries = site.countries
        iso = _pick(_cumulative(countries), rng.randrange(1 << 30))
        first, last = person(iso)
        bill = address(iso)
        if first.isascii() and last.isascii():
            local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        else:
            local = f"client{rng.randrange(10**6):06d}"
        email = f"{local}{rng.randrange(100)}@example.{rng.choice(('com', 'org', 'net'))}"
        company = rng.choice(_COMPANIES) if rng.random() < 0.1 else ""
        customers = {
            "customers_firstname": first,
            "customers_lastname": last,
            "customers_company": company,
            "customers_street_address": bill["street"],
            "customers_suburb": bill["suburb"],
            "customers_city": bill["city"],
            "customers_postcode": bill["postcode"],
            "customers_state": bill["state"],
            "customers_country": bill["country"],
            "customers_email_address": email,
            "customers_telephone": phone(iso),
        }

        shipping_choices = _SHIPPING.get(site.code, _SHIPPING["*"])
        ship_name, ship_cents, relay_type = rng.choice(shipping_choices)
        same_person = rng.random() < 0.8
        d_first, d_last = (first, last) if same_person else person(iso)
        delivery: dict[str, Any] = {"delivery_firstname": d_first, "delivery_lastname": d_last}
        if not valid:
            relay_type = None
            delivery.update(
                {
                    "delivery_company": "",
                    "delivery_street_address": "",
                    "delivery_suburb": "",
                    "delivery_city": "",
                    "delivery_postcode": "",
                    "delivery_state": "",
                    "delivery_country": "",
                }
            )
        elif relay_type:
            ship_to = address(iso)
            relay_name = f"{rng.choice(('Tabac', 'Presse', 'Épicerie', 'Kiosk', 'Locker'))} {ship_to['city']}"
            delivery["relay_info"] = {
                "relay_id": str(rng.randrange(10000, 999999)),
                "relay_type": relay_type,
                "relay_name": relay_name,
                "relay_address": ship_to["street"],
                "relay_city": ship_to["city"],
                "relay_postcode": ship_to["postcode"],
                "relay_country_iso": iso,
            }
            delivery.update(
                {
                    "delivery_company": relay_name,
                    "delivery_street_address": ship_to["street"],
                    "delivery_suburb": "",
                    "delivery_city": ship_to["city"],
                    "delivery_postcode": ship_to["postcode"],
                    "delivery_state": "",
                    "delivery_country": ship_to["country"],
                }
            )
        else:
            ship_to = bill if same_person and rng.random() < 0.7 else address(iso)
            delivery.update(
                {
                    "delivery_company": company if same_person else "",
                    "delivery_street_address": ship_to["street"],
                    "delivery_suburb": ship_to["suburb"],
                    "delivery_city": ship_to["city"],
                    "delivery_postcode": ship_to["postcode"],
                    "delivery_state": ship_to["state"],
                    "delivery_country": ship_to["country"],
                }
            )

        def local_cents(eur_cents: int) -> int:
            if site.rate == 1.0 or eur_cents == 0:
                return eur_cents
            value = round(eur_cents * site.rate)
            return round(value, -2) - 1 if site.currency == "SEK" else value  # SEK prices end in .99

        products = []
        goods = 0
        n_items = _pick(_ITEM_COUNT_TABLE, rng.randrange(1 << 30))
        for _ in range(n_items):
            p = self.catalogue[rng.randrange(len(self.catalogue))]
            size_name, size_ref, _ean, _q = rng.choice(p.sizes)
            qty = 1 if rng.random() < 0.85 else rng.randrange(2, 4)
            unit = local_cents(p.price_cents)
            reduced = unit
            if rng.random() < 0.3:
                reduced = max(1, unit - unit * rng.choice((10, 15, 20, 30, 40, 50)) // 100)
            goods += reduced * qty
            products.append(
                {
                    "products_reference": p.reference,
                    "products_name": p.name,
                    "products_qty": str(qty),
                    "products_spartoo": str(p.spartoo_id),
                    "products_manufacturers": p.brand,
                    "products_size": size_name,
                    "products_size_reference": size_ref if rng.random() < 0.9 else "",
                    "products_color": p.colour[lang] if rng.random() < 0.95 else "",
                    "products_price_unit": _money(unit),
                    "products_price_unit_with_reduce": _money(reduced),
                    "products_final_price": _money(reduced * qty),
                }
            )
        choices = _PAYMENTS + tuple((m, 0) for m in _LOCAL_PAYMENTS.get(site.code, ()))
        method, fee_pm = rng.choice(choices)
        shipping = local_cents(ship_cents)
        fee = goods * fee_pm // 1000
        return {
            "orders_id": self.orders_id(index),
            "customers": customers,
            "delivery": delivery,
            "payment_method": method,
            "payment_price": _money(fee),
            "shipping_price": _money(shipping),
            "shipping_name": ship_name,
            "order_total": _money(goods + shipping + fee),
            "orders_status_name": STATUS_NAMES[status][lang],
            "orders_status_id": str(status),
            "date_purchased": format_date(purchased),
            "last_modified": format_date(modified),
            "products": {"product": products},
            "errors": {},
            # not a Spartoo tag: kept out of the XML, used by the admin view and tests
            "_meta": {"site": site.code, "currency": site.currency, "tracking_number": tracking, "valid": valid},
        }

    def order_xml(self, index: int, *, malformed: bool = False) -> str:
        """Order ``index`` as one ``<order>`` element.

        ``malformed`` breaks it on purpose (a non-numeric quantity and total)
        while keeping the XML well-formed: the host must quarantine it.
        """
        data = self.order(index)
        if malformed:
            data["order_total"] = "N/A"
            data["products"]["product"][0]["products_qty"] = "deux"
        return _order_element(data)

    def order_bytes(self, index: int) -> bytes:
        """``order_xml(index)`` encoded as UTF-8, from a small cache keyed by the order's current state.

        Repeated exports of the same orders (many stores polling one
        sandbox) are then cheap; a changed order gets a new cache key.
        """
        return self._cached_bytes(index, *self._state(index))

    def _bytes_uncached(self, index: int, status: int, purchased: int, modified: int, tracking: str | None) -> bytes:
        return _order_element(self._order(index, status, purchased, modified, tracking, None)).encode()


_ITEM_COUNT_TABLE = _cumulative(((1, 15), (2, 20), (3, 30), (4, 20), (5, 15)))


def _order_element(data: dict[str, Any]) -> str:
    return "<order>" + _render(data) + "</order>"


def _render(data: dict[str, Any], parts: list[str] | None = None) -> str:
    out: list[str] = [] if parts is None else parts
    append = out.append
    for tag, value in data.items():
        kind = type(value)
        if kind is str:
            if not value:
                append(f"<{tag}/>")
            else:
                if "&" in value or "<" in value or ">" in value:
                    value = escape(value)
                append(f"<{tag}>{value}</{tag}>")
        elif tag[0] == "_":
            continue
        elif kind is dict:
            append(f"<{tag}>")
            _render(value, out)
            append(f"</{tag}>")
        elif kind is list:
            for item in value:
                append(f"<{tag}>")
                _render(item, out)
                append(f"</{tag}>")
        elif value is not None:
            append(f"<{tag}>{escape(str(value))}</{tag}>")
    return "".join(out) if parts is None else ""
