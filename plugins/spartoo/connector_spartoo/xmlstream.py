"""Streaming, hostile-input-safe parsing of Spartoo's XML answers.

Spartoo's ``xml_export_orders.php`` has no pagination: a backlog comes back
as one document of any size. :class:`OrderStream` feeds the HTTP body chunk
by chunk into an lxml pull parser and yields one JSON-like ``dict`` per
``<order>`` as soon as its end tag is read, then clears the element and
drops its earlier siblings. After each chunk every element already read
completely is dropped too, whatever its tag and wherever it sits
(:func:`_prune`: on the path of open elements, all but the last child go;
an ``<order>`` being read is kept whole), so memory stays flat whatever the
document's size or shape. :func:`stream_elements` does the same for any
repeated element (the catalogue's ``<product>``).

Safety: entity substitution, DTD loading and network access are off; a
document that carries a ``<!DOCTYPE>`` (the only place entities can be
declared) is refused with :class:`HostileInputError`, as is a document
larger than ``max_bytes`` or nested deeper than ``max_depth``.

XML -> JSON (described in ``connector_spartoo/schemas/order.schema.json``): a child
element becomes a key named after its tag; an element with children becomes
an object; a leaf becomes its stripped text, or ``None`` when empty; the tags
in :data:`LIST_TAGS` are always lists and any other tag that repeats becomes
a list too. Attributes, comments and processing instructions are ignored.

Broken input:

* an ``<order>`` that cannot become a document (no ``orders_id``, text mixed
  with elements) is yielded as a :class:`RawReject` and parsing goes on;
* an ``<order>`` outside ``<orders>`` is never dropped unseen: it is yielded
  as a :class:`RawReject` (stage ``parse``, with its ``orders_id``), which
  the host fetches again by its id (``fetch_order``) and quarantines if that
  fails;
* XML that stops being well-formed mid-document: the orders before the fault
  have been yielded; the rest of the document becomes one :class:`RawReject`
  with the parser's reason, and :attr:`OrderStream.complete` stays ``False``
  (the caller must not advance its cursor past that document);
* a document that just ends too early (the body was cut: "premature end")
  raises :class:`TransientError`: it looks like a truncated transfer, which
  is worth retrying, whereas a reject would silently lose the missing orders.
  The order being read when the body ended is never yielded, though the
  parser closes it when told the document is over (lxml 6.2 and later).

A ``<statut>`` envelope directly under the root with a negative ``<id>``
raises the matching error (:func:`raise_for_statut`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from lxml import etree

from connector_core.errors import (
    AccountError,
    AuthError,
    HostileInputError,
    MarketplaceError,
    QuotaError,
    TransientError,
)
from connector_core.models import RawReject

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_DEPTH = 32
#: Size cap of a small whole answer (``xml_maj_orders.php`` and the like).
ENVELOPE_MAX_BYTES = 16 * 1024 * 1024
#: Tags that are always lists in the JSON form, even with a single entry.
LIST_TAGS = frozenset({"product", "error"})
#: How much of a rejected order's XML is kept for the quarantine.
REJECT_PAYLOAD_CHARS = 64 * 1024

AUTH_MESSAGE = (
    "Could not authorise with Spartoo: your partner ID may be wrong. "
    "Check your account credentials and try to connect again."
)


def _parser_options() -> dict[str, Any]:
    return {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "huge_tree": False,
        "dtd_validation": False,
        "remove_comments": True,
        "remove_pis": True,
    }


def _refuse_doctype(root: etree._Element) -> None:
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.system_url or info.public_id:
        raise HostileInputError("refusing an XML document with a DOCTYPE: Spartoo answers never declare one")


def raise_for_statut(code: str | None, description: str | None, *, site: str | None = None) -> None:
    """Raise the error matching a negative Spartoo ``<statut>`` id; do nothing for 1 or no code.

    -1/-2 :class:`AuthError`, -428 :class:`AccountError`, -429
    :class:`QuotaError`, any other negative :class:`MarketplaceError`.
    """
    if code is None:
        return
    try:
        value = int(code.strip())
    except ValueError:
        raise MarketplaceError(f"Spartoo answered with an unreadable status {code!r}", code=code) from None
    if value >= 0:
        return
    where = f" (site {site})" if site else ""
    if value in (-1, -2):
        raise AuthError(AUTH_MESSAGE, code=value)
    if value == -428:
        raise AccountError(
            f"Spartoo says this seller account is deactivated (code -428){where}: "
            "contact Spartoo seller support to reactivate it, then connect again.",
            code=value,
        )
    if value == -429:
        raise QuotaError(
            f"Spartoo's hourly request quota is used up (code -429){where}: the host will retry later.",
            code=value,
        )
    detail = f": {description.strip()}" if description and description.strip() else ""
    raise MarketplaceError(f"Spartoo refused the request with code {value}{where}{detail}", code=value)


def _statut_of(elem: etree._Element) -> tuple[str | None, str | None]:
    return elem.findtext("id"), elem.findtext("description")


def parse_envelope(content: bytes, *, site: str | None = None, max_bytes: int = ENVELOPE_MAX_BYTES) -> etree._Element:
    """Parse a small whole answer (e.g. of ``xml_maj_orders.php``) safely; raise on a negative ``<statut>``.

    Returns the root element. Refuses DOCTYPEs and documents over ``max_bytes``.
    """
    if len(content) > max_bytes:
        raise HostileInputError(f"Spartoo answer of {len(content)} bytes is over the {max_bytes}-byte cap")
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:  # refused before libxml2 reads any declaration
        raise HostileInputError("refusing an XML document with a DOCTYPE: Spartoo answers never declare one")
    parser = etree.XMLParser(**_parser_options())
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise _not_xml(content[:512], exc.msg) from None
    _refuse_doctype(root)
    statut = root if root.tag == "statut" else root.find("statut")
    if statut is not None:
        raise_for_statut(*_statut_of(statut), site=site)
    return root


_TEXT_CONTROLS = frozenset(b"\t\n\r")


def _not_xml(head: bytes, reason: str) -> MarketplaceError | HostileInputError:
    """The error for an answer that does not start as XML: binary junk is hostile input, text a bad answer."""
    if any(b < 32 and b not in _TEXT_CONTROLS for b in head):
        return HostileInputError(
            "Spartoo answered with binary data, not XML: refused before parsing (check base_url; "
            "if it is right, the answer was damaged on the way)"
        )
    return MarketplaceError(f"Spartoo sent an answer that is not XML ({reason})")


class UnusableElement(Exception):
    """An element that has no JSON form (text mixed with elements, no children where needed)."""


def _local(tag: Any) -> str | None:
    if not isinstance(tag, str):
        return None
    return tag.rsplit("}", 1)[-1]


def element_to_json(elem: etree._Element, path: str = "$", max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON form of ``elem`` (see the module docstring).

    At most ``max_depth`` levels below ``elem`` are read; deeper nesting
    raises :class:`HostileInputError`.
    """
    if not len(elem):
        text = elem.text
        return (text.strip() or None) if text else None
    return _object(elem, path, max_depth)


def _object(elem: etree._Element, path: str, depth: int) -> dict[str, Any]:
    # Hot path (every element of every order): one Python loop per element that has children,
    # leaves read inline, no per-element path string (a path is only built for an error message).
    if depth <= 0:
        raise HostileInputError(f"Spartoo answer nests deeper than allowed at {path}")
    text = elem.text
    if text and not text.isspace():
        raise UnusableElement(f"{path} mixes text with elements")
    out: dict[str, Any] = {}
    lists: set[str] = set()
    for child in elem:
        tag = child.tag
        if type(tag) is not str:
            continue  # not an element (the parser already drops comments and processing instructions)
        tail = child.tail
        if tail and not tail.isspace():
            raise UnusableElement(f"{path} mixes text with elements")
        if "}" in tag:
            tag = tag.rsplit("}", 1)[1]
        if len(child):
            value: Any = _object(child, f"{path}.{tag}", depth - 1)
        else:
            value = child.text
            if value is not None:
                value = value.strip() or None
        if tag in lists:
            out[tag].append(value)
        elif tag in out:  # a tag seen twice becomes a list
            out[tag] = [out[tag], value]
            lists.add(tag)
        elif tag in LIST_TAGS:
            out[tag] = [value]
            lists.add(tag)
        else:
            out[tag] = value
    return out


class OrderStream:
    """Iterate the orders of one ``xml_export_orders.php`` answer.

    ``chunks`` is the body as an iterable of bytes (e.g.
    ``response.iter_bytes()``). Iterating yields ``dict`` orders and
    :class:`RawReject` s; :attr:`complete` is ``True`` once the whole
    document was read without a well-formedness fault.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        site: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self._chunks = chunks
        self.site = site
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.complete = False
        self.failure: str | None = None  # why the document could not be read to its end
        self.bytes_read = 0
        self.orders = 0
        self.rejects = 0
        self._root_seen = False
        self._head = b""  # the first bytes, to tell binary junk from a text answer that is not XML
        self.root: etree._Element | None = None  # the partial tree: at most the order being read stays in it
        self._parent_depth: tuple[etree._Element, int] | None = None  # the <orders> element and its depth

    def _key(self, order_id: str | None) -> str | None:
        if not order_id:
            return None
        return f"{self.site}:{order_id}" if self.site else order_id

    def _see_root(self, root: etree._Element) -> None:
        """Check the document element once: no DOCTYPE, ``<root>`` or a ``<statut>`` envelope."""
        self._root_seen = True
        self.root = root
        _refuse_doctype(root)
        if _local(root.tag) not in ("root", "statut"):
            raise MarketplaceError(f"Spartoo answered with <{_local(root.tag)}> instead of <root>: check base_url")

    def _check_depth(self) -> None:
        """Refuse a partial tree deeper than ``max_depth`` and drop what is read completely (:func:`_prune`)."""
        _prune(self.root, self.max_depth, "order")

    def _events(self, parser: etree.XMLPullParser, *, orders: bool = True) -> Iterator[dict[str, Any] | RawReject]:
        # Only <root>, <statut> and <order> raise events (the tag filter runs inside lxml), so Python
        # runs a few times per order instead of twice per element. ``orders=False``: the orders whose
        # end comes now are dropped, not yielded (see the truncated document in __iter__).
        for event, elem in parser.read_events():
            if not self._root_seen:
                self._see_root(elem.getroottree().getroot())
            if event == "start":
                continue
            tag = elem.tag
            if "}" in tag:
                tag = tag.rsplit("}", 1)[1]
            parent = elem.getparent()
            if tag == "statut":
                if parent is None or parent.getparent() is None:
                    raise_for_statut(*_statut_of(elem), site=self.site)
            elif tag == "order" and parent is not None and _local(parent.tag) == "orders":
                if orders:
                    yield self._convert(elem, parent)
                elem.clear(keep_tail=False)
                while elem.getprevious() is not None:
                    del parent[0]
            elif tag == "order" and not any(_local(a.tag) == "order" for a in elem.iterancestors()):
                if orders:
                    yield self._stray(elem)
                elem.clear(keep_tail=False)

    def _depth(self, parent: etree._Element) -> int:
        """Levels from the document element down to an ``<order>`` of ``parent`` (the same for all of them)."""
        if self._parent_depth is not None and self._parent_depth[0] is parent:
            return self._parent_depth[1]
        depth = 1
        node: etree._Element | None = parent
        while node is not None:
            depth += 1
            node = node.getparent()
        self._parent_depth = (parent, depth)
        return depth

    def _stray(self, elem: etree._Element) -> RawReject:
        """The reject of an ``<order>`` found outside ``<orders>``: kept with its id, to be fetched again."""
        where = "/".join(str(_local(a.tag)) for a in reversed(list(elem.iterancestors())))
        order_id = (elem.findtext("orders_id") or "").strip() or None
        self.rejects += 1
        return RawReject(
            reason=f"an <order> outside <orders> (at /{where}): not imported from this document; "
            "the host fetches it again by its id",
            stage="parse",
            order_key=self._key(order_id),
            payload=etree.tostring(elem, encoding="unicode")[:REJECT_PAYLOAD_CHARS],
        )

    def _convert(self, elem: etree._Element, parent: etree._Element) -> dict[str, Any] | RawReject:
        try:
            doc = element_to_json(elem, max_depth=self.max_depth - self._depth(parent))
            if not isinstance(doc, dict):
                raise UnusableElement("the <order> element has no child elements")
            if not isinstance(doc.get("orders_id"), str):
                raise UnusableElement("the <order> has no orders_id, or more than one")
        except HostileInputError:
            raise HostileInputError(f"Spartoo answer nests deeper than {self.max_depth} levels") from None
        except UnusableElement as exc:
            order_id = (elem.findtext("orders_id") or "").strip() or None
            self.rejects += 1
            xml = etree.tostring(elem, encoding="unicode")[:REJECT_PAYLOAD_CHARS]
            return RawReject(
                reason=f"unusable Spartoo order: {exc}", stage="parse", order_key=self._key(order_id), payload=xml
            )
        self.orders += 1
        return doc

    def __iter__(self) -> Iterator[dict[str, Any] | RawReject]:
        parser = etree.XMLPullParser(
            events=("start", "end"), tag=("{*}root", "{*}statut", "{*}order"), **_parser_options()
        )
        for chunk in self._chunks:
            if not chunk:
                continue
            self.bytes_read += len(chunk)
            if len(self._head) < 512:
                self._head += chunk[: 512 - len(self._head)]
            if self.bytes_read > self.max_bytes:
                raise HostileInputError(f"Spartoo answer is over the {self.max_bytes}-byte cap; refusing the rest")
            try:
                parser.feed(chunk)
            except etree.XMLSyntaxError as exc:
                yield from self._events(parser)  # the orders completed before the fault
                self._check_depth()  # libxml2 stops at its own depth limit: report ours
                if not self._root_seen:
                    raise _not_xml(self._head, exc.msg) from None
                self.rejects += 1
                self.failure = f"malformed XML after {self.orders} order(s), at byte {self.bytes_read}: {exc.msg}"
                yield RawReject(
                    reason=f"malformed XML in the Spartoo answer after {self.orders} order(s); "
                    f"the rest of this site's document was skipped: {exc.msg}",
                    stage="parse",
                    path=f"byte {self.bytes_read}",
                )
                return
            yield from self._events(parser)
            self._check_depth()
        try:
            root = parser.close()
        except etree.XMLSyntaxError as exc:
            # the body stopped: an order whose end is reported only now was cut short and is ended by the
            # parser closing what is still open (lxml 6.2 reports those ends). It is not yielded: the
            # TransientError below says the document must be fetched again
            yield from self._events(parser, orders=False)
            self._check_depth()
            if not self._root_seen:
                raise _not_xml(self._head, exc.msg) from None
            raise TransientError(
                f"the Spartoo answer ended early after {self.orders} order(s) (truncated transfer?): {exc.msg}"
            ) from None
        yield from self._events(parser)
        if not self._root_seen:
            if root is None:
                raise MarketplaceError("Spartoo sent an empty answer")
            self._see_root(root)
        self._check_depth()
        self.complete = True


def _prune(root: etree._Element | None, max_depth: int, keep: str) -> None:
    """Drop every element of a partial tree that is read completely; refuse one deeper than ``max_depth``.

    The open elements are the chain of last children from the root; every
    earlier child along that chain was closed, and its events (an order, a
    product) were handled before this runs, so it can go. Below an element
    named ``keep`` (the one being read) nothing is dropped.
    """
    node = root
    depth = 0
    pruning = True
    while node is not None:
        depth += 1
        if depth > max_depth:
            raise HostileInputError(f"Spartoo answer nests deeper than {max_depth} levels")
        if pruning and _local(node.tag) == keep:
            pruning = False
        count = len(node)
        if pruning and count > 1:
            del node[: count - 1]
        node = node[-1] if count else None


def stream_elements(
    chunks: Iterable[bytes],
    tag: str,
    *,
    site: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Iterator[etree._Element]:
    """Yield each ``<tag>`` element of a streamed Spartoo answer as soon as it is read; free it afterwards.

    The same safety as :class:`OrderStream`: no DOCTYPE, ``<root>`` (or a
    ``<statut>`` envelope) as the document element, a negative top-level
    ``<statut>`` raised as its error, ``max_bytes`` and ``max_depth`` enforced,
    completed elements dropped after each chunk. A yielded element is valid
    until the next one is asked for. Malformed XML raises
    :class:`MarketplaceError`: unlike orders, nothing of a broken answer is used.
    """
    parser = etree.XMLPullParser(
        events=("start", "end"), tag=("{*}root", "{*}statut", "{*}" + tag), **_parser_options()
    )
    root: etree._Element | None = None
    size = 0
    head = b""

    def events() -> Iterator[etree._Element]:
        nonlocal root
        for event, elem in parser.read_events():
            if root is None:
                root = elem.getroottree().getroot()
                _refuse_doctype(root)
                if _local(root.tag) not in ("root", "statut"):
                    raise MarketplaceError(
                        f"Spartoo answered with <{_local(root.tag)}> instead of <root>: check base_url"
                    )
            if event == "start":
                continue
            local = _local(elem.tag)
            parent = elem.getparent()
            if local == "statut":
                if parent is None or parent.getparent() is None:
                    raise_for_statut(*_statut_of(elem), site=site)
            elif local == tag:
                yield elem
                elem.clear(keep_tail=False)
                if parent is not None:
                    while elem.getprevious() is not None:
                        del parent[0]

    for chunk in chunks:
        if not chunk:
            continue
        size += len(chunk)
        if len(head) < 512:
            head += chunk[: 512 - len(head)]
        if size > max_bytes:
            raise HostileInputError(f"Spartoo answer is over the {max_bytes}-byte cap; refusing the rest")
        try:
            parser.feed(chunk)
        except etree.XMLSyntaxError as exc:
            if root is None:
                raise _not_xml(head, exc.msg) from None
            raise MarketplaceError(f"Spartoo sent malformed XML after byte {size}: {exc.msg}") from None
        yield from events()
        _prune(root, max_depth, tag)
    try:
        parser.close()
    except etree.XMLSyntaxError as exc:
        if root is None:
            raise _not_xml(head, exc.msg) from None
        raise TransientError(f"the Spartoo answer ended early (truncated transfer?): {exc.msg}") from None
    yield from events()
    if root is None:
        raise MarketplaceError("Spartoo sent an empty answer")
